#!/usr/bin/env python3
"""Writes the training text for the test models: the corpus (minus the line of rare
characters, so that byte fallback has work to do) plus deterministic pseudo-text in many
scripts. Usage: gen_train.py CORPUS OUT"""
import random
import sys

SYLLABLES = {
    "latin": ("ka ri to ne sa mi lo de ra vi un per con the and ing ion ent er es"
              .split()),
    "cyrillic": "ка ри то не са ми ло де ра ви про ста ния ост".split(),
    "greek": "κα ρι το νε σα μι λο δε".split(),
    "han": list("的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年"),
    "kana": list("あいうえおかきくけこさしすせそたちつてとなにぬね"
                 "のアイウエオカキクケコ"),
    "hangul": list("가나다라마바사아자차카타파하는을를이에서요"),
    "arabic": "ال من في على هذا كان ما لا".split(),
    "devanagari": "क ख ग न म र स ह ा ि ी ु े ो ं".split(),
}


def word(rng, script):
    parts = SYLLABLES[script]
    return "".join(rng.choice(parts) for _ in range(rng.randint(1, 4)))


def main():
    corpus, out = sys.argv[1], sys.argv[2]
    rng = random.Random(1234)
    lines = [l for l in open(corpus, encoding="utf-8").read().split("\n")
             if not l.startswith("Rare characters")]
    scripts = list(SYLLABLES)
    with open(out, "w", encoding="utf-8") as f:
        for _ in range(3):
            for l in lines:
                f.write(l + "\n")
        for i in range(6000):
            script = scripts[i % len(scripts)]
            words = [word(rng, script) for _ in range(rng.randint(3, 12))]
            if rng.random() < 0.3:
                words.insert(rng.randint(0, len(words)), str(rng.randint(0, 99999)))
            if rng.random() < 0.2:
                words.append(rng.choice(["!", "?", ".", ",", ";", "(x)", "{y}", "=="]))
            f.write(" ".join(words) + "\n")


if __name__ == "__main__":
    main()
