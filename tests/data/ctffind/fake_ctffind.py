"""A stand-in for CTFFIND's terminal dialog (test helper, not a CTF estimator).

Asks CTFFIND 4.1's questions (``--five``: CTFFIND 5's, with its 'samnple' spelling) in the program's prompt
style ``<question> [<default>] : ``, records the answers in ``<diagnostic stem>.answers``, copies the
results specimen given by ``--results`` to ``<diagnostic stem>.txt`` and prints CTFFIND's summary line.
"""

import shutil
import sys

QUESTIONS = ["Input image file name", "Output diagnostic image file name", "Pixel size", "Acceleration voltage",
             "Spherical aberration", "Amplitude contrast", "Size of amplitude spectrum to compute",
             "Minimum resolution", "Maximum resolution", "Minimum defocus", "Maximum defocus",
             "Defocus search step", "Do you know what astigmatism is present?", "Slower, more exhaustive search?",
             "Use a restraint on astigmatism?", "Expected (tolerated) astigmatism", "Find additional phase shift?"]


def ask(question, default="x"):
    sys.stdout.write(f"{question} [{default}]{' ' * 8}: ")
    sys.stdout.flush()
    return sys.stdin.readline().rstrip("\n")


def main():
    args = sys.argv[1:]
    questions = list(QUESTIONS)
    if "--five" in args:
        questions += ["Determine sample tilt?", "Determine samnple thickness?"]
    questions.append("Do you want to set expert options?")
    print("\n        **   Welcome to Ctffind   **\n\n            Version : 4.1.14\n")
    answers = [ask(q) for q in questions]
    diag = answers[1]
    stem = diag[: -len(".mrc")] if diag.endswith(".mrc") else diag
    with open(stem + ".answers", "w") as fh:
        fh.write("\n".join(answers) + "\n")
    shutil.copy(args[args.index("--results") + 1], stem + ".txt")
    print(f"\nSummary of results                          : {stem}.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
