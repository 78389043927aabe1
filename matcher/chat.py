"""Chat-group robots (企业微信, 钉钉, 飞书): each platform's request for a short markdown message,
signed as the platform documents, and how each says a message was taken.

- 企业微信 group robot: ``{"msgtype": "markdown", "markdown": {"content": ...}}``; the key in the
  URL is the only credential.
- 钉钉 custom robot, 加签: ``timestamp`` (ms) and ``sign`` query parameters,
  ``sign = urlencode(base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")))``;
  ``{"msgtype": "markdown", "markdown": {"title": ..., "text": ...}}``.
- 飞书 custom bot, 签名校验: ``timestamp`` (s) and ``sign`` in the body,
  ``sign = base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b""))``; an interactive card
  with one markdown element.

All three answer HTTP 200 with a JSON code (``errcode`` or ``code``); anything but 0 is a failure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlsplit

# The platforms' public robot hosts: a channel's URL names one of these (unless private targets
# are allowed, for local receivers in tests and on-premise installs).
PLATFORM_HOSTS: dict[str, tuple[str, ...]] = {
    "wecom": ("qyapi.weixin.qq.com",),
    "dingtalk": ("oapi.dingtalk.com",),
    "feishu": ("open.feishu.cn", "open.larksuite.com"),
}
MAX_MARKDOWN_BYTES = 4000  # 企业微信's limit is 4096 bytes of content


def channel_url_problem(kind: str, url: str, *, allow_private: bool) -> str | None:
    """Why ``url`` cannot be a ``kind`` robot's address; None if it may be."""
    if allow_private:
        return None
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.hostname not in PLATFORM_HOSTS[kind]:
        hosts = ", ".join(PLATFORM_HOSTS[kind])
        return f"A {kind} robot's address is https:// on {hosts}."
    return None


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """钉钉's ``sign`` parameter (already URL-encoded)."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def feishu_sign(secret: str, timestamp: int) -> str:
    """飞书's ``sign`` field: the key is the string to sign, the message empty."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class ChatRequest:
    """The URL to POST to and the JSON body."""

    url: str
    body: bytes


def _shorten(text: str) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= MAX_MARKDOWN_BYTES:
        return text
    return encoded[: MAX_MARKDOWN_BYTES - 3].decode("utf-8", "ignore") + "…"


def chat_request(
    kind: str, url: str, secret: str | None, title: str, markdown: str, *, now_seconds: float
) -> ChatRequest:
    """The platform's request for one message titled ``title`` (signed when there is a
    secret, at ``now_seconds``)."""
    text = _shorten(markdown)
    body: dict[str, Any]
    if kind == "wecom":
        body = {"msgtype": "markdown", "markdown": {"content": text}}
    elif kind == "dingtalk":
        body = {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
        if secret:
            timestamp_ms = int(now_seconds * 1000)
            joiner = "&" if urlsplit(url).query else "?"
            url = (
                f"{url}{joiner}timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"
            )
    else:
        body = {
            "msg_type": "interactive",
            "card": {
                "header": {"title": {"tag": "plain_text", "content": title}},
                "elements": [{"tag": "markdown", "content": text}],
            },
        }
        if secret:
            timestamp = int(now_seconds)
            body = {"timestamp": str(timestamp), "sign": feishu_sign(secret, timestamp), **body}
    return ChatRequest(url=url, body=json.dumps(body, ensure_ascii=False).encode("utf-8"))


def platform_error(answer_text: str) -> str | None:
    """The platform's refusal in a 200 answer (``errcode`` / ``code`` not 0); None if taken."""
    try:
        answer = json.loads(answer_text)
    except ValueError:
        return f"not a JSON answer: {answer_text[:200]}"
    if not isinstance(answer, dict):
        return f"not a JSON object: {answer_text[:200]}"
    code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0)))
    if code in (0, "0"):
        return None
    message = answer.get("errmsg") or answer.get("msg") or answer.get("StatusMessage") or ""
    return f"the platform refused it: {code} {message}".strip()
