"""The pages' words in zh-CN (the default) and en."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "zh-CN": {
        "summary.title": "提交培训总结",
        "summary.intro": "{alliance} · 第 {period} 期（应于 {due} 提交）",
        "summary.craftsman": "师傅",
        "summary.apprentice": "徒弟",
        "summary.as": "提交人",
        "summary.content": "培训内容与收获",
        "summary.hours": "培训学时",
        "summary.skills": "练习的技能（用逗号分隔）",
        "summary.submit": "提交",
        "summary.thanks": "已收到第 {period} 期培训总结，谢谢！",
        "summary.next_due": "下一期应于 {due} 提交。",
        "summary.errors": "请修改以下内容：",
        "error.title": "无法打开此页面",
        "craftsman": "师傅",
        "apprentice": "徒弟",
    },
    "en": {
        "summary.title": "Hand in the training summary",
        "summary.intro": "{alliance} · period {period} (due on {due})",
        "summary.craftsman": "Craftsman",
        "summary.apprentice": "Apprentice",
        "summary.as": "Handed in by",
        "summary.content": "What was trained and learnt",
        "summary.hours": "Training hours",
        "summary.skills": "Skills practised (comma-separated)",
        "summary.submit": "Hand in",
        "summary.thanks": "The summary of period {period} is in. Thank you!",
        "summary.next_due": "The next one is due on {due}.",
        "summary.errors": "Please correct the following:",
        "error.title": "This page cannot be opened",
        "craftsman": "craftsman",
        "apprentice": "apprentice",
    },
}


def translate(locale: str, key: str, **values: object) -> str:
    """The text of ``key`` in ``locale`` (zh-CN when unknown), with ``values`` filled in."""
    table = MESSAGES.get(locale, MESSAGES["zh-CN"])
    return table.get(key, MESSAGES["zh-CN"].get(key, key)).format(**values)
