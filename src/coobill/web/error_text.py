"""The service layer's error messages in the portal's language.

Services raise one English message, `"<field>: <what is wrong>"`, the same for the CLI, the
JSON API and the portal. The portal shows it beside its field, where the field's name is
redundant; in Chinese it shows the translation of what is wrong, matched here by pattern
(a message no pattern knows stays in English rather than be shown wrong).
"""

from __future__ import annotations

import re

_V = r"(?P<v>'.*'|\".*\")"  # a value as the service quotes it (repr)

# What is wrong (the part after "<field>: "), in Chinese; {names} are the pattern's groups.
_ZH: list[tuple[str, str]] = [
    (r"at least 8 characters", "至少 8 个字符"),
    (r"letters, digits and _ \. @ - only \(1-64\)", "只能用字母、数字和 _ . @ -(1-64 个字符)"),
    (r"must be billing or admin", "必须是计费用户或管理员"),
    (r"user (?P<name>.+) already exists", "用户 {name} 已存在"),
    (r"must be en or zh", "必须是 en 或 zh"),
    (r"you cannot remove yourself", "不能删除自己"),
    (r"(?P<name>.+) is the last admin", "{name} 是最后一个管理员"),
    (rf"{_V} is not an extension number", "{v} 不是分机号码"),
    (r"must be prepaid or postpaid", "必须是预付费或后付费"),
    (r"at most (?P<n>\d+) characters", "最多 {n} 个字符"),
    (r"choose at least one extension \(or \* for all\)", "至少选择一个分机(* 表示全部分机)"),
    (r"choose at least one", "至少选择一个"),
    (r"no such extension (?P<v>.+)", "没有分机 {v}"),
    (r"missing columns (?P<v>.+)", "缺少列 {v}"),
    (rf"{_V} is not a yes/no value", "{v} 不是“是/否”值"),
    (rf"{_V} must be digits only \(or empty\)", "{v} 只能是数字(或留空)"),
    (rf"{_V} must be digits only", "{v} 只能是数字"),
    (rf"{_V} must be digits", "{v} 只能是数字"),
    (r"must not be negative", "不能为负数"),
    (r"must be on or off", "必须是开启或关闭"),
    (r"another currency needs its symbol \(--symbol\)", "其他货币需要填写货币符号"),
    (r"must be USD, CNY, EUR, GBP, VND or other \(with a symbol\)",
     "必须是 USD、CNY、EUR、GBP、VND,或其他货币(需填写符号)"),
    (r"must not be empty", "不能为空"),
    (rf"{_V} is not a known time zone", "{v} 不是已知的时区"),
    (rf"{_V} is not a time of day HH:MM \(00:00-23:59\)", "{v} 不是 HH:MM 格式的时刻(00:00-23:59)"),
    (r"must be a whole number", "必须是整数"),
    (rf"{_V} is not a whole number", "{v} 不是整数"),
    (r"must be between (?P<a>\S+) and (?P<b>\S+)", "必须在 {a} 到 {b} 之间"),
    (r"at most (?P<n>\d+) digits", "最多 {n} 位数字"),
    (r"(?P<n>\d+) is shorter than the prefix; it counts the prefix \(0 = any\)",
     "{n} 比前缀还短;号码长度包括前缀(0 = 任意长度)"),
    (rf"{_V} is not a date YYYY-MM-DD", "{v} 不是 YYYY-MM-DD 格式的日期"),
    (rf"{_V} is not a trunk's endpoint name", "{v} 不是中继的端点名称"),
    (rf"{_V} is past the last month a statement can end", "{v} 晚于账单可截止的最后一个月"),
    (r"must not be before from", "不能早于开始日期"),
    (r"must be day, month or year", "必须是按日、按月或按年"),
    (r"amounts must be given as decimal text, not float", "金额必须以十进制文本给出"),
    (r"amounts must be given as decimal text, not true or false", "金额必须以十进制文本给出"),
    (r"at most (?P<v>\S+) \(billing\.max_balance\)", "最多 {v}(billing.max_balance)"),
    (r"the balance of (?P<ext>\S+) would be (?P<v>\S+), above the most a balance may hold, "
     r"(?P<m>\S+) \(billing\.max_balance\)",
     "分机 {ext} 的余额将为 {v},超过余额上限 {m}(billing.max_balance)"),
    (rf"{_V} is after (?P<d>\S+)", "{v} 晚于 {d}"),
    (r"too many logins at once; try again in a moment", "同时登录的请求太多,请稍后再试"),
    (rf"{_V} is not a finite number", "{v} 不是有效的数字"),
    (rf"{_V} is not a number", "{v} 不是数字"),
    (rf"{_V} is too large", "{v} 太大"),
    (rf"{_V} has more than 4 decimal places", "{v} 的小数超过 4 位"),
    (r"(?P<v>\S+) has more than 4 decimal places", "{v} 的小数超过 4 位"),
    (rf"{_V} must not be negative", "{v} 不能为负数"),
    (r"must be more than zero", "必须大于零"),
    (r"extension (?P<v>.+) does not exist", "分机 {v} 不存在"),
    (r"rate (?P<v>.+) does not exist", "费率 {v} 不存在"),
    (r"user (?P<v>.+) does not exist", "用户 {v} 不存在"),
    (r"no funds are held for call (?P<v>.+)", "通话 {v} 没有预留金额"),
    (r"call (?P<v>.+) has no flagged hold to resolve", "通话 {v} 没有待处理的标记预留"),
    (r"call (?P<v>.+) has several flagged holds \((?P<ids>.+)\): say which \(--hold ID\)",
     "通话 {v} 有多个标记预留({ids}):请指明是哪一个(--hold ID)"),
    (r"a whole number of seconds, 0 to (?P<n>\d+)", "秒数必须是 0 到 {n} 之间的整数"),
    (r"must be locked or unlocked", "必须是已锁定或未锁定"),
    (r"must be answered, unanswered or refused", "必须是已接通、未接通或已拒绝"),
    (r"must be low or empty", "必须是余额不足或留空"),
    (r"must be monthly or weekly", "必须是每月或每周"),
    (r"at most a year back", "最多只能追溯一年"),
    (r"must be lock or flag", "必须是锁定或标记"),
    (rf"{_V} is not a day, YYYY-MM-DD", "{v} 不是 YYYY-MM-DD 格式的日期"),
    (r"fee (?P<v>\d+): no such fee", "没有费用 {v}"),
    (rf"{_V} is not a month, YYYY-MM", "{v} 不是 YYYY-MM 格式的月份"),
    (rf"{_V} is past the last month a statement can end", "{v} 超出了对账单可结束的最后月份"),
    (rf"{_V} is not a trunk's endpoint name", "{v} 不是中继的端点名称"),
    (r"must be one of (?P<v>.+)", "必须是以下之一:{v}"),
    (r"event (?P<v>\d+): no such webhook event", "没有 webhook 事件 {v}"),
    (r"event (?P<v>\d+): delivered already", "webhook 事件 {v} 已送达"),
    (rf"{_V} is not a list of days \(mon,tue,wed,thu,fri,sat,sun\)",
     "{v} 不是星期列表(mon,tue,wed,thu,fri,sat,sun)"),
    (rf"{_V} must be any, only or except", "{v} 必须是 any、only 或 except"),
    (rf"{_V} is not a moment YYYY-MM-DD HH:MM", "{v} 不是 YYYY-MM-DD HH:MM 格式的时刻"),
    (r"a moment is a local time to the minute", "时刻须为精确到分钟的本地时间"),
    (r"must be after valid_from", "必须晚于生效时间"),
    (r"(?P<v>.+) is a holiday already", "{v} 已是节假日"),
    (r"holiday (?P<v>.+) does not exist", "节假日 {v} 不存在"),
    (r"no holiday on (?P<v>\S+)", "{v} 不是节假日"),
    (r"a dated deck replaces the deck in force at its moment; --replace is for now",
     "定时生效的费率表会在生效时替换现行费率;“替换”只用于立即替换"),
    (r"ends before the deck takes effect", "在费率表生效之前就已失效"),
    (r"choose a deck to import", "请选择要导入的费率表"),
    (r"the header must start (?P<v>\S+)", "表头必须以 {v} 开头"),
    (rf"{_V} is not a whole number of seconds", "{v} 不是整秒数"),
    (r"prefix (?P<v>\S+) is already on line (?P<n>\d+)", "前缀 {v} 已在第 {n} 行出现"),
    (rf"{_V} is not digits", "{v} 不是数字"),
    (r"the deck is not UTF-8 text", "费率表不是 UTF-8 文本"),
    (rf"{_V} is not a trunk's endpoint name", "{v} 不是中继的端点名"),
]
_COMPILED = [(re.compile(pattern), text) for pattern, text in _ZH]
_FIELD = re.compile(r"^[a-z_]+: ")
_CSV_LINE = re.compile(r"^csv line (?P<n>\d+): (?P<rest>.*)$")


def error_text(message: str, language: str) -> str:
    """`message` as the portal shows it in `language` (English: as the service said it)."""
    if language != "zh":
        return message
    line = _CSV_LINE.match(message)
    if line:
        return f"CSV 第 {line['n']} 行:{error_text(line['rest'], language)}"
    what = _FIELD.sub("", message, count=1)
    for pattern, text in _COMPILED:
        found = pattern.fullmatch(what)
        if found:
            return text.format(**found.groupdict())
    return message
