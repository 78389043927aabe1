"""Craftsman mentorship matcher: cross-unit mentorships for industry craftsman alliances.

The package root imports nothing, so the pure layers (``matcher.algorithms``, ``matcher.services``)
load without Flask; the app factory lives in ``matcher.app``.
"""
