"""mgcma-app (or python app.py) [--checkpoint DIR] [--asr SPEC] [--device auto|cpu|cuda] [--share] [--host H] [--port P]

Starts the demo on the bundled model at http://127.0.0.1:7860. It listens on this machine only
unless you pass --host 0.0.0.0 or --share (a public link): both let others use your machine.
"""
import argparse
import ctypes
import os
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# figures are drawn off screen; named here, matplotlib need not import pyplot to find its backend
# when Gradio asks for it around every request
os.environ.setdefault("MPLBACKEND", "agg")

from mgcma.app.gradio_import import skip_stub_writing  # noqa: E402
from mgcma.config import DEFAULT_CHECKPOINT, add_precision_argument  # noqa: E402
from mgcma.infer.recognizer import EmotionRecognizer  # noqa: E402


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each new thread its own malloc arena, and the server's worker threads then grow
    its memory by tens of MB with every burst of concurrent users, without levelling off; with 2
    arenas it levels off after the first burst. Elsewhere than Linux/glibc this does nothing."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)   # -8: M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def load_warm(checkpoint, asr: str, device: str, precision: str) -> EmotionRecognizer:
    """The recogniser, with what its first request would otherwise make (the ASR's cached silence)."""
    recognizer = EmotionRecognizer(checkpoint, asr, device, precision=precision)
    recognizer.warm_up()
    return recognizer


def main(argv=None):
    parser = argparse.ArgumentParser(prog="mgcma-app", description="MGCMA emotion recognition demo")
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="model directory")
    parser.add_argument("--asr", default="auto",
                        help="auto (the model's own Whisper, one encoder pass; else the bundled tiny.en) | shared | "
                             "faster-whisper[:DIR] | openai-whisper:NAME_OR_PATH | none")
    parser.add_argument("--device", default="auto", help="auto (GPU when there is one) | cpu | cuda")
    add_precision_argument(parser)
    parser.add_argument("--share", action="store_true", help="also create a public gradio.live link")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to listen on (0.0.0.0 exposes it to your network)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    args = parser.parse_args(argv)
    limit_malloc_arenas()
    # the model loads while Gradio imports: reading weights, CTranslate2's decoder and PyTorch's
    # kernels release Python's lock that the import holds (the first answer 0.3-0.4 s sooner here)
    with ThreadPoolExecutor(1) as pool:
        loading = pool.submit(load_warm, args.checkpoint, args.asr, args.device, args.precision)
        skip_stub_writing()
        from mgcma.app.ui import create_app
        demo = create_app(loading.result())   # a loading error is raised here, in the main thread
    # uploads beyond 50 MB are refused by the server before they reach the model
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, max_file_size="50mb")


if __name__ == "__main__":
    main()
