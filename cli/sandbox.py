"""``botfleet sandbox``: run the Telegram emulator and the YooKassa stand-in until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import typer

# The stand-in's defaults, repeated here so `botfleet --help` need not import the sandbox (aiogram).
DEFAULT_SHOP_ID = "100500"
DEFAULT_SECRET_KEY = "test_sandbox_secret_key"  # noqa: S105  (a sandbox credential, not a secret)

logger = logging.getLogger(__name__)


def _parse_bot(spec: str) -> tuple[str, str]:
    token, sep, username = spec.rpartition("=")
    if not sep or not token or not username:
        raise typer.BadParameter(f"expected TOKEN=USERNAME, got {spec.split(':', 1)[0]}:***")
    return token, username


async def _serve(
    *,
    host: str,
    telegram_port: int,
    yookassa_port: int,
    webhook_url: str | None,
    notify_from: str | None,
    shop_id: str,
    secret_key: str,
    public_url: str | None,
    bots: list[tuple[str, str]],
    rate_limits: bool,
    require_receipts: bool = False,
    require_tax_system: bool = False,
) -> None:
    from sandbox.telegram import EmulatorConfig, RateLimits, TelegramEmulator
    from sandbox.yookassa import YooKassaStandIn

    config = EmulatorConfig(rate_limits=RateLimits() if rate_limits else RateLimits.disabled())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with (
        TelegramEmulator.start(host=host, port=telegram_port, config=config) as tg,
        YooKassaStandIn.start(
            host=host,
            port=yookassa_port,
            shop_id=shop_id,
            secret_key=secret_key,
            webhook_url=webhook_url,
            notify_from=notify_from,
            public_url=public_url,
            require_receipts=require_receipts,
            require_tax_system=require_tax_system,
        ) as yk,
    ):
        for token, username in bots:
            tg.register_bot(token, username=username)
        typer.echo(
            f"Telegram Bot API emulator: {tg.base_url}  (control API: {tg.base_url}/sandbox)"
        )
        typer.echo(f"YooKassa stand-in:         {yk.api_url}  (shop id {shop_id})")
        typer.echo(f"  notifications -> {webhook_url or 'nowhere yet (PUT /sandbox/webhook)'}")
        if require_receipts:
            typer.echo("  54-FZ receipts required with every payment and partial refund")
        typer.echo(f"Sandbox web page:          {tg.web_url}  (chat with the bots as a user)")
        typer.echo("Press Ctrl-C to stop.")
        await stop.wait()


def run(
    host: str = typer.Option("127.0.0.1", help="Address both servers listen on."),
    telegram_port: int = typer.Option(8081, help="Port of the Telegram Bot API emulator."),
    yookassa_port: int = typer.Option(8082, help="Port of the YooKassa stand-in."),
    webhook_url: str | None = typer.Option(
        None, help="Where YooKassa notifications are POSTed (e.g. the control plane's webhook)."
    ),
    notify_from: str | None = typer.Option(
        None, help="Local source address of notifications, e.g. 127.0.0.77."
    ),
    shop_id: str = typer.Option(DEFAULT_SHOP_ID, help="YooKassa shop id accepted by the API."),
    secret_key: str = typer.Option(
        DEFAULT_SECRET_KEY, help="YooKassa secret key accepted by the API.", show_default=False
    ),
    public_url: str | None = typer.Option(
        None, help="Public base URL of the YooKassa stand-in for checkout links."
    ),
    bot: list[str] = typer.Option(
        [], "--bot", help="Pre-register a bot as TOKEN=USERNAME (repeatable)."
    ),
    rate_limits: bool = typer.Option(
        True, "--rate-limits/--no-rate-limits", help="Telegram-like flood limits (429)."
    ),
    require_receipts: bool = typer.Option(
        False,
        "--require-receipts",
        help="Act as a shop on YooKassa's 54-FZ solution: a payment (or partial refund) without a "
        "valid receipt is refused with 400 invalid_request.",
    ),
    require_tax_system: bool = typer.Option(
        False,
        "--require-tax-system",
        help="With --require-receipts: each receipt must name tax_system_code (several systems).",
    ),
) -> None:
    """Run the offline Telegram and YooKassa stand-ins."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    bots = [_parse_bot(spec) for spec in bot]
    try:
        asyncio.run(
            _serve(
                host=host,
                telegram_port=telegram_port,
                yookassa_port=yookassa_port,
                webhook_url=webhook_url,
                notify_from=notify_from,
                shop_id=shop_id,
                secret_key=secret_key,
                public_url=public_url,
                bots=bots,
                rate_limits=rate_limits,
                require_receipts=require_receipts,
                require_tax_system=require_tax_system,
            )
        )
    except OSError as exc:
        typer.secho(f"error: cannot listen: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from exc
