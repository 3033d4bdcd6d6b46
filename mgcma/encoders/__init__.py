"""The encoders MGCMA reads: Whisper's audio encoder read from CTranslate2 files (whisper.py, ct2.py),
BERT/MiniLM and its tokenizer without transformers (bert.py, tokenizer.py), building any encoder from
its source and one interface over the speech encoders (build.py), int8 inference (precision.py), and
the GE2E speaker encoder that tells voices apart (voice_print.py). This file imports nothing, so that
the torch-free parts (ct2, tokenizer) stay torch-free; nothing here imports the model, the data or
training."""
