"""Personal data never reaches a log line; the config contract loads TOML + env."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import structlog

from bridge.config import load_settings, settings_to_toml
from bridge.errors import ConfigError
from bridge.logging import configure_logging, mask_personal_data


def test_personal_fields_and_stray_values_are_masked() -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    log = structlog.get_logger("t")
    log.info(
        "order.signed",
        referral_id="12345:BJ12345-20261129-004211",
        callerPhone="13812345678",
        detail="caller 王某某 at +86 138 1234 5678 or 010-62345678",
        worker={"name": "王某", "phone": "138-1234-5678"},
    )
    line = json.loads(stream.getvalue().strip())
    text = stream.getvalue()
    assert line["referral_id"] == "12345:BJ12345-20261129-004211"  # identifiers survive
    for secret in ("13812345678", "王某某", "1234 5678", "62345678", "138-1234-5678"):
        assert secret not in text
    assert line["callerPhone"] == "***"


def test_mask_processor_is_pure_on_identifiers() -> None:
    event = {"event": "x", "case_no": "12351-2026-0001234", "version": 7}
    assert mask_personal_data(None, "info", dict(event)) == event


def test_config_toml_with_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(Path("bridge.example.toml").read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("BRIDGE_AMQP__URL", "amqp://u:p@broker:5672/")
    monkeypatch.setenv("BRIDGE_BRIDGE__POLL_INTERVAL_S", "0.5")
    settings = load_settings(path)
    assert settings.amqp.url == "amqp://u:p@broker:5672/"
    assert settings.bridge.poll_interval_s == 0.5
    assert settings.hotline12345 is not None and settings.hotline12345.unit_code == "BJZGH"
    assert settings.admin.tokens["read-token"] == "read"


def test_a_side_without_its_section_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text('[bridge]\nsides = ["12351"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="hotline12351"):
        load_settings(path)


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    text = Path("bridge.example.toml").read_text(encoding="utf-8")
    path.write_text(text.replace("poll_interval_s", "poll_intervall_s"), encoding="utf-8")
    with pytest.raises(ConfigError, match="poll_intervall_s"):
        load_settings(path)


def test_library_logging_is_masked_json_too() -> None:
    import logging

    stream = io.StringIO()
    configure_logging("info", stream=stream)
    logging.getLogger("aio_pika").warning("lost connection while sending 王某某 13812345678")
    line = json.loads(stream.getvalue().strip())
    assert line["level"] == "warning"
    assert "王某某" not in line["event"] and "13812345678" not in line["event"]


def test_check_config_hides_every_secret(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from bridge.cli import main

    path = tmp_path / "bridge.toml"
    text = Path("bridge.example.toml").read_text(encoding="utf-8")
    path.write_text(text.replace("guest:guest", "bridge:s3cret-pw"), encoding="utf-8")
    result = CliRunner().invoke(main, ["check-config", "--config", str(path)])
    assert result.exit_code == 0, result.output
    for secret in ("s3cret-pw", "demo-secret", "demo-key", "read-token", "operate-token"):
        assert secret not in result.output
    assert "bridge:***@" in result.output


def test_validation_errors_are_described_without_their_input() -> None:
    from pydantic import BaseModel, ValidationError

    from adapters.errors import describe_validation

    class Worker(BaseModel):
        phone: int

    try:
        Worker.model_validate({"phone": "王某 13812345678"})
    except ValidationError as exc:
        text = describe_validation(exc)
    assert text.startswith("phone:") and "13812345678" not in text and "王某" not in text


def test_settings_written_as_toml_read_back_the_same(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "bridge.example.toml"
    settings = load_settings(
        example, bridge={"node_id": "n-1", "sides": ["12345"]}, amqp={"namespace": "ns-x"}
    )
    path = tmp_path / "bridge.toml"
    path.write_text(settings_to_toml(settings), encoding="utf-8")

    again = load_settings(path)

    assert again.model_dump(exclude={"mapping"}) == settings.model_dump(exclude={"mapping"})
    assert again.bridge.sides == ["12345"] and again.amqp.namespace == "ns-x"
    assert settings.hotline12345 is not None and again.hotline12345 is not None
    secret = settings.hotline12345.client_secret.get_secret_value()
    assert again.hotline12345.client_secret.get_secret_value() == secret != "**********"
