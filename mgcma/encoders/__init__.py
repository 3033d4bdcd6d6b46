"""The encoders MGCMA reads: Whisper's audio encoder read from CTranslate2 files (whisper.py, ct2.py),
BERT/MiniLM and its tokenizer without transformers (bert.py, tokenizer.py), building any encoder from
its source and one interface over the speech encoders (build.py), cached partial fine-tuning
(partial.py) and int8 inference (precision.py). This file imports nothing, so that the torch-free
parts (ct2, tokenizer) stay torch-free."""
