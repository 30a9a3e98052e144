"""The ``restless-cds`` command: ``serve`` the service, ``eval`` a request file offline."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cds.errors import CdsError, RulesError
from cds.observability import uvicorn_log_config
from cds.settings import ConfigError, Settings, load_settings, open_defaults, settings_handoff

if TYPE_CHECKING:
    from cds.rulebase import RuleBase

__all__ = ["main"]


def _settings(rules_dir: Path | None) -> Settings:
    """Settings from the environment, with ``--rules-dir`` taking precedence."""
    overrides: dict[str, Any] = {"rules_dir": rules_dir} if rules_dir else {}
    return _load(**overrides)


def _load(**overrides: Any) -> Settings:
    """Settings, or one line naming the bad setting (exit status 2), never a traceback."""
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


@click.group()
@click.version_option(package_name="restless-cds")
def main() -> None:
    """restless-cds: CDS Hooks service for drug-induced restless legs, arms and back."""


@main.command()
@click.option("--host", default=None, help="Interface to bind [default: 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [default: 8000].")
@click.option(
    "--rules-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Rules directory [default: the bundled rules].",
)
@click.option("--workers", type=int, default=None, help="Worker processes [default: 1].")
@click.option("--log-level", default=None, help="Log level [default: info].")
@click.option(
    "--allow-unauthenticated-remote",
    is_flag=True,
    default=None,
    help="Accept unsigned calls on a non-loopback interface (no JWT verification yet).",
)
@click.option(
    "--ui/--no-ui",
    default=None,
    help="Serve /playground and /dashboard [default: only on loopback].",
)
def serve(
    *,
    ui: bool | None,
    host: str | None,
    port: int | None,
    rules_dir: Path | None,
    workers: int | None,
    log_level: str | None,
    allow_unauthenticated_remote: bool | None,
) -> None:
    """Serve the CDS Hooks endpoints with uvicorn."""
    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "host": host,
            "port": port,
            "rules_dir": rules_dir,
            "workers": workers,
            "log_level": log_level,
            "allow_unauthenticated_remote": allow_unauthenticated_remote,
            "ui": ui,
        }.items()
        if v is not None
    }
    settings = _load(**overrides)
    if not (
        settings.loopback_only
        or settings.authenticates_clients
        or settings.allow_unauthenticated_remote
    ):
        raise click.UsageError(
            f"refusing to serve unauthenticated calls on {settings.host}: no trusted CDS "
            "client is configured (RESTLESS_CDS_TRUSTED_ISSUERS_FILE, "
            "RESTLESS_CDS_TRUST_CDS_HOOKS_SANDBOX). Bind to 127.0.0.1, configure issuers, or "
            "pass --allow-unauthenticated-remote behind an authenticating proxy."
        )
    with _collector_paused():
        _serve(settings)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The garbage collector off while ``serve`` starts, on again however it ends.

    Start-up builds some 150,000 objects that live as long as the process (modules,
    models, the rule base) and little garbage; every collection during it walked them
    all again. With one worker, the app's lifespan collects once, freezes what is alive
    and turns the collector back on (``cds.app``'s GC tuning); see README "Cold start".
    """
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _serve(settings: Settings) -> None:
    import uvicorn

    rulebase = _load_rules(settings.rules_dir)  # refuses to start on invalid rules
    for warning in open_defaults(settings):
        click.echo(f"warning: {warning}", err=True)
    with settings_handoff(settings) as handoff_file:
        # read by cds.observability.server in each worker, at import
        os.environ["RESTLESS_CDS_HEADER_READ_TIMEOUT_SECONDS"] = str(
            settings.header_read_timeout_seconds
        )
        if settings.workers > 1:  # one /metrics view over all workers
            metrics_dir = handoff_file.parent / "metrics"
            metrics_dir.mkdir(mode=0o700)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        uvicorn.run(
            _app_factory(settings, rulebase),
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            log_config=uvicorn_log_config(settings.log_level, settings.log_format),
            http="cds.observability.server:HttpProtocol",
            h11_max_incomplete_event_size=64 * 1024,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=int(settings.graceful_shutdown_seconds),
        )


def _load_rules(rules_dir: Path) -> RuleBase:
    """The checked rule base, or every ``file:line:col`` problem on stderr and exit 1."""
    from cds.authoring import load_checked_rulebase

    try:
        return load_checked_rulebase(rules_dir)
    except RulesError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
    raise SystemExit(f"refusing to start: invalid rules in {rules_dir}")


def _app_factory(settings: Settings, rulebase: RuleBase) -> Callable[[], Any] | str:
    """What uvicorn builds the app with. One worker runs in this process and serves the
    rules just checked (loading them again cost a second compile at every start); several
    workers are separate processes that each load their own from the handoff."""
    if settings.workers == 1:
        from cds.app import create_app

        return functools.partial(create_app, settings, rulebase=rulebase, tune_gc=True)
    rulebase.close()
    gc.enable()  # this process only supervises the workers
    return "cds.app:app_from_handoff"


@main.group()
def rules() -> None:
    """Tools for rule authors: check the rules directory."""


@rules.command("check")
@click.argument(
    "rules_dir",
    required=False,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
def rules_check(rules_dir: Path | None) -> None:
    """Validate rule, value-set and phrase files; print file:line:col problems."""
    from cds.authoring import check_rules_dir
    from cds.rulebase import rule_files

    directory = _settings(rules_dir).rules_dir
    problems = check_rules_dir(directory)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        raise SystemExit(f"{len(problems)} problem(s) in {directory}")
    click.echo(f"ok: {len(rule_files(directory))} rule files in {directory}")


@rules.command("test")
@click.argument(
    "rules_dir",
    required=False,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option(
    "--examples",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Example requests [default: fhir_examples/ beside the rules directory].",
)
def rules_test(rules_dir: Path | None, examples: Path | None) -> None:
    """Run the cases in <rules>/tests/ and every example request; show differences."""
    from cds.authoring import run_examples, run_rule_cases
    from cds.rulebase import load_rulebase

    settings = _settings(rules_dir)
    examples = examples or settings.rules_dir.resolve().parent / "fhir_examples"
    try:
        rulebase = load_rulebase(settings.rules_dir)
    except CdsError as exc:
        raise SystemExit(f"rules do not load:\n{exc}") from exc
    try:
        args = (rulebase, settings.source_label, settings.override_system_uri)
        results = list(run_rule_cases(*args))
        if examples.is_dir():
            results += list(run_examples(examples, *args))
    finally:
        rulebase.close()
    failed = [r for r in results if not r.passed]
    for result in failed:
        click.echo(f"FAIL {result.name} ({result.where})")
        for problem in result.problems:
            click.echo("  " + problem.replace("\n", "\n  "))
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise SystemExit(1)


@main.group()
def feedback() -> None:
    """What clinicians did with the cards: per-rule acceptance and override reasons."""


@feedback.command("report")
@click.option("--from", "start", type=click.DateTime(), help="Cards issued on or after.")
@click.option("--to", "end", type=click.DateTime(), help="Cards issued before.")
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
def feedback_report(start: dt.datetime | None, end: dt.datetime | None, output: str) -> None:
    """Per rule and rules version: cards issued, accepted, overridden, reasons, rate."""
    from cds.feedback import FeedbackStore, render_report

    settings = _load()
    if output == "table":  # csv and json stay machine-readable
        click.echo(f"feedback store: {settings.feedback_store_label}")
    store = FeedbackStore(settings.feedback_database_url)
    try:
        rows = store.report(_utc(start), _utc(end))
    finally:
        store.close()
    click.echo(render_report(rows, output), nl=False)
    if output == "table":
        click.echo(REPORT_TERMS)


REPORT_TERMS = (
    "\nissued: distinct cards recorded (one per card per hook instance: an EHR that calls"
    " again for the same order and gets the same card back is not counted twice)."
    "\nacceptance = accepted / (accepted + overridden), over cards with"
    " feedback; a card with several feedback items counts once per outcome."
)


@feedback.command("reset-suppressions")
@click.option("--rule", "rule_id", default=None, help="Only this rule [default: every rule].")
def feedback_reset_suppressions(rule_id: str | None) -> None:
    """Lift every "already addressed" silence (for demos: one override silences a patient's
    rule for days). Cards and feedback stay."""
    from cds.feedback import FeedbackStore

    settings = Settings()
    click.echo(f"feedback store: {settings.feedback_store_label}")
    store = FeedbackStore(settings.feedback_database_url)
    try:
        lifted = store.reset_suppressions(rule_id)
    finally:
        store.close()
    click.echo(f"{lifted} suppression(s) lifted")


@feedback.command("prune")
@click.option(
    "--older-than-days",
    "days",
    type=click.FloatRange(min=0),
    default=None,
    help="Delete cards issued longer ago than this [default: RESTLESS_CDS_CARD_RETENTION_DAYS,"
    " 90; 0 keeps every card].",
)
def feedback_prune(days: float | None) -> None:
    """Delete what retention no longer keeps: old cards with their feedback and
    explanation, expired suppressions and token ids. A card that a live suppression
    names stays until that suppression expires. Serving workers do this periodically."""
    from cds.feedback import FeedbackStore

    settings = _load()
    retention = settings.card_retention_days if days is None else days
    click.echo(f"feedback store: {settings.feedback_store_label}")
    now = dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=retention) if retention > 0 else dt.datetime.min
    store = FeedbackStore(settings.feedback_database_url)
    try:
        result = store.prune(cutoff.replace(tzinfo=dt.UTC), now)
    finally:
        store.close()
    if retention > 0:
        cards = (
            f"{result.cards} card(s) issued before {cutoff:%Y-%m-%d %H:%M} UTC deleted, with "
            f"{result.feedback} feedback item(s)"
        )
    else:
        cards = "every card kept (retention 0)"
    expired = f"{result.suppressions} suppression(s), {result.token_uses} token id(s)"
    click.echo(f"{cards}; expired and deleted: {expired}")


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    return moment.replace(tzinfo=dt.UTC) if moment and moment.tzinfo is None else moment


@main.command()
@click.argument("request_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rules-dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--service", "service_id", default=None, help="Service id [default: by hook].")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def explain(
    request_file: Path, rules_dir: Path | None, service_id: str | None, as_json: bool
) -> None:
    """Show facts, rule firings, derived facts, cards and why other rules did not fire."""
    from cds.authoring import explain_request, format_explanation, service_for
    from cds.rulebase import load_rulebase

    settings = _settings(rules_dir)
    service = service_for("", service_id) if service_id else None
    if service_id and service is None:
        raise click.UsageError(f"no service '{service_id}'")
    try:
        rulebase = load_rulebase(settings.rules_dir)
        try:
            report = explain_request(
                request_file.read_bytes(),
                rulebase,
                service=service,
                source_label=settings.source_label,
                override_system=settings.override_system_uri,
            )
        finally:
            rulebase.close()
    except (CdsError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(json.dumps(report, indent=2) if as_json else format_explanation(report))


@main.command("eval")
@click.argument("request_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rules-dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--service", "service_id", default=None, help="Service id [default: by hook].")
def eval_command(request_file: Path, rules_dir: Path | None, service_id: str | None) -> None:
    """Print the cards a CDS Hooks request file gets, without a server."""
    from cds.hooks import SERVICES, CardsResponse, evaluate, parse_request
    from cds.rulebase import load_rulebase

    settings = _settings(rules_dir)
    try:
        request = parse_request(request_file.read_bytes())
        service = SERVICES.get(service_id or "") or next(
            (s for s in SERVICES.values() if s.hook == request.hook), None
        )
        if service is None:
            raise click.UsageError(f"no service for hook '{request.hook}'; use --service")
        rulebase = load_rulebase(settings.rules_dir)
        try:
            result = evaluate(
                request,
                service,
                rulebase,
                source_label=settings.source_label,
                override_system=settings.override_system_uri,
            )
        finally:
            rulebase.close()
    except CdsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for issue in result.extraction.issues:
        click.echo(f"skipped {issue.where}: {issue.message}", err=True)
    response = CardsResponse.model_validate({"cards": result.cards})
    click.echo(json.dumps(response.model_dump(mode="json", exclude_none=True), indent=2))
