"""The checker: the clock rules line by line, and where every message went.

clocks.py judges each VM's own lines and gives the verdict; messages.py matches
receives and failures to their sends; accounting.py gives every msg_id one
fate (fates.py) backed by a log line, with inbox.py inferring what each inbox
held at its end; verdict.py holds the rules and the findings.
"""

from analysis.check.clocks import check_trial
from analysis.check.verdict import RULES, CheckResult, Rule, Verdict

__all__ = ["RULES", "CheckResult", "Rule", "Verdict", "check_trial"]
