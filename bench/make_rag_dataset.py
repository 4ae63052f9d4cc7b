#!/usr/bin/python3
"""Writes a RAG workload for hydra-bench --dataset: a handful of documents,
many questions over them, each prompt a document followed by a question
whose answer starts by quoting the document (so a model continues by
copying it: prompt-lookup decoding's case).

Usage: make_rag_dataset.py --out=rag.jsonl [--documents=4] [--questions=64]
           [--doc_words=1100] [--max_tokens=64] [--seed=16]
One JSON object per line: {"prompt": ..., "max_tokens": ...}. Documents are
simple English sentences (about 1.4 tokens per word with Llama and Qwen
tokenizers: --doc_words=1100 gives ~1,500-token documents; stories15M's
context of 256 tokens needs --doc_words=120). Questions come round robin
over the documents, so each document's prefix is reused by the questions
after the first.
"""

import argparse
import json
import random

NAMES = ["Lily", "Tom", "Mia", "Ben", "Sara", "Max", "Anna", "Leo"]
PLACES = ["the park", "the forest", "the river", "the garden", "the town",
          "the beach", "the hill", "the old house"]
THINGS = ["a red ball", "a small dog", "a blue kite", "a shiny key",
          "a big box", "a little bird", "a green hat", "a warm cake"]
VERBS = ["found", "lost", "carried", "painted", "hid", "shared", "fixed",
         "watched"]
FEELINGS = ["happy", "sad", "surprised", "tired", "proud", "scared"]


def sentence(rng):
    return (f"{rng.choice(NAMES)} went to {rng.choice(PLACES)} and "
            f"{rng.choice(VERBS)} {rng.choice(THINGS)}. "
            f"{rng.choice(NAMES)} felt {rng.choice(FEELINGS)}.")


def document(rng, words):
    out, count = [], 0
    while count < words:
        s = sentence(rng)
        out.append(s)
        count += len(s.split())
    return " ".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--documents", type=int, default=4)
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--doc_words", type=int, default=1100)
    parser.add_argument("--max_tokens", type=int, default=64)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    docs = [document(rng, args.doc_words) for _ in range(args.documents)]
    with open(args.out, "w") as f:
        for q in range(args.questions):
            doc = docs[q % len(docs)]
            sentences = doc.split(". ")
            quoted = sentences[rng.randrange(len(sentences) - 1)]
            name = quoted.split()[0]
            # The answer begins with the quoted sentence's first words.
            prompt = (f"{doc}\n\nQuestion: what did {name} do? Quote the story."
                      f"\nAnswer: \"{' '.join(quoted.split()[:4])}")
            f.write(json.dumps({"prompt": prompt,
                                "max_tokens": args.max_tokens}) + "\n")


if __name__ == "__main__":
    main()
