#!/usr/bin/env python3
"""How often the pipeline's student states the oracle's taste, on the users the teacher labelled and on the rest.

Usage: student_agreement.py ORACLE_TEACHER_JSONL RUN_DIR

ORACLE_TEACHER_JSONL holds the oracle's rationale for every user: the teacher.jsonl of a run with
{"pipeline": {"teach_users": <all users>}} on the same world and oracle settings. RUN_DIR is the run whose
student is measured: its rationales.jsonl (the student's, by user row) and teacher.jsonl (which users were
labelled). Step 1 of each text is parsed as the oracle writes it ("... centres on C1 and C2, mostly at the T
price tier, with a liking for B1 and B2."); prints, per group, the share of users whose category set and tier
equal the oracle's, the mean Jaccard of the category and brand sets, and the share whose step 1 did not parse.
Standard library only. docs/RESULTS.md ("Where the gain is lost") was measured with it.
"""
import json
import re
import sys

STEP1 = re.compile(r"centres on (.*?), mostly at the (.*?) price tier(?:, with a liking for (.*?))?\.")


def facts(text):
    m = STEP1.search(text)
    if not m:
        return None
    split = lambda s: set(re.split(r", | and ", s)) if s else set()
    return {"categories": split(m.group(1)), "tier": m.group(2), "brands": split(m.group(3))}


def jaccard(a, b):
    return len(a & b) / len(a | b) if a | b else 1.0


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    oracle = {}
    for line in open(sys.argv[1], encoding="utf-8"):
        j = json.loads(line)
        oracle[j["user"]] = facts(j["text"])
    labelled = {json.loads(line)["user"] for line in open(sys.argv[2] + "/teacher.jsonl", encoding="utf-8")}
    student = {}
    for line in open(sys.argv[2] + "/rationales.jsonl", encoding="utf-8"):
        j = json.loads(line)
        student[j["i"]] = facts(j["text"])
    for name, in_group in (("labelled", True), ("unlabelled", False)):
        users = [u for u in student if (u in labelled) == in_group and oracle.get(u)]
        parsed = [u for u in users if student[u]]
        n = max(len(users), 1)
        eq = sum(student[u]["categories"] == oracle[u]["categories"] for u in parsed) / n
        cj = sum(jaccard(student[u]["categories"], oracle[u]["categories"]) for u in parsed) / n
        tier = sum(student[u]["tier"] == oracle[u]["tier"] for u in parsed) / n
        bj = sum(jaccard(student[u]["brands"], oracle[u]["brands"]) for u in parsed) / n
        print(f"{name}: {len(users)} users, categories equal {eq:.1%} (Jaccard {cj:.3f}), tier equal {tier:.1%}, "
              f"brands Jaccard {bj:.3f}, step 1 unparsed {1 - len(parsed) / n:.1%}")


if __name__ == "__main__":
    main()
