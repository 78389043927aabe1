"""Domain rules as plain typed functions, shared by the API, the CLI and the jobs."""
