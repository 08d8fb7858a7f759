"""Replaces the expected strings of packages/model-grin/fixtures/chat-templates/cases.json with
transformers' own apply_chat_template(messages, tokenize=False, add_generation_prompt=...) output,
and marks each case's provenance with the transformers version. Needs no network: the templates and
special tokens are read from the fixture itself and given to a tokenizer built in memory.

Run on a machine with transformers (and tokenizers):
    python3 tools/reference/chat_template_dump.py packages/model-grin/fixtures/chat-templates/cases.json
It prints each case whose string changed; commit the rewritten file."""
import json
import sys

import transformers
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast


def tokenizer_for(template):
    tokens = template["special_tokens"]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens.values()))}
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel(vocab, unk_token=tokens.get("unk_token"))),
        chat_template=template["chat_template"],
        **tokens,
    )


def main(path):
    with open(path, encoding="utf-8") as f:
        fixture = json.load(f)
    tokenizers = {name: tokenizer_for(t) for name, t in fixture["templates"].items()}
    provenance = f"transformers {transformers.__version__} apply_chat_template"
    changed = 0
    for case in fixture["cases"]:
        messages = fixture["conversations"][case["conversation"]]
        text = tokenizers[case["template"]].apply_chat_template(
            messages, tokenize=False, add_generation_prompt=case["add_generation_prompt"]
        )
        if text != case["expected"]:
            changed += 1
            print(f"{case['template']} / {case['conversation']}: {case['expected']!r} -> {text!r}")
        case["expected"] = text
        case["provenance"] = provenance
    with open(path, "w", encoding="utf-8") as f:
        json.dump(fixture, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"{len(fixture['cases'])} cases written with {provenance}; {changed} differed from the fixture")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "packages/model-grin/fixtures/chat-templates/cases.json")
