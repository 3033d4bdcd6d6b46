"""python app.py [--checkpoint DIR] [--asr SPEC] [--device auto|cpu|cuda] [--share] [--host H] [--port P]

The demo on the bundled model at http://127.0.0.1:7860 (the Hugging Face Space's entry point;
installed, the same is `mgcma-app`). See app/serve.py.
"""
from mgcma.app.serve import main

if __name__ == "__main__":
    main()
