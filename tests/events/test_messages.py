"""Messages: the checked-in JSON Schema is the one the dataclasses give, every payload type validates
against it, and a message reads back into its dataclasses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semc.events import messages as msg
from semc.events.qc import Finding

SCHEMA_FILE = Path(msg.__file__).parent / "schema" / "semc-events-v1.json"
REF = msg.RunRef(run_id=3, run_name="ddstack1", rundir="/data/run", session_id=7, session_name="26nov23a",
                 preset="enn", host="head1")
EXAMPLES = [
    msg.MotionCorrectionStored(exposure_id=11, filename="a_00001enn", aligned_id=12, aligned_filename="a_00001enn-a",
                               drift_total_px=3.2, drift_total_A=2.6, drift_early_A=1.0, drift_late_A=1.6,
                               pixel_size_A=0.83, latency_s=14.5, attempts=1),
    msg.CtfStored(exposure_id=11, filename="a_00001enn", image_id=12, defocus_u_A=15000.0, defocus_v_A=15400.0,
                  astigmatism_A=400.0, angle_deg=30.0, phase_shift_rad=0.0, resolution_A=None, cc=0.1, latency_s=None,
                  attempts=2),
    msg.ExposureFailed(exposure_id=11, filename="x", step="motioncorrection", state="quarantined", attempts=3,
                       error_kind="CorruptInput", error="truncated"),
    msg.RunState(state="started", steps=["motioncorrection"], pid=42),
    msg.RunProgress(step="ctfestimation", counts={"done": 3, "pending": 1}, backlog=1, throughput_per_min=2.5,
                    latency_p50_s=10.0, latency_p95_s=None, latency_max_s=12.0, catch_up_s=24.0),
    msg.ExposureVerdictMessage(exposure_id=11, filename="x", keep=False,
                               findings=[Finding("limit", "resolution_A", "too bad", 9.0, 8.0)],
                               metrics={"resolution_A": 9.0, "ice_thickness_nm": None}, assessed=True),
    msg.SessionVerdictMessage(verdict="STOP_NOW", previous="GOOD", reason="4 in a row", exposures_seen=60,
                              findings=[Finding("consecutive_rejects", None, "4 in a row", 4, 4, 1057)],
                              exposure_id=1060),
]


def _envelope(payload, seq=1):
    return msg.Envelope(id=msg.message_id_for("t", seq), type=payload.TYPE, version=msg.SCHEMA_VERSION,
                        time=msg.Envelope.now_iso(), seq=seq, run=REF, payload=payload)


def test_the_checked_in_schema_is_the_generated_one():
    assert json.loads(SCHEMA_FILE.read_text()) == msg.json_schema()


@pytest.mark.parametrize("payload", EXAMPLES, ids=lambda p: p.TYPE)
def test_every_type_reads_back_into_its_dataclasses(payload):
    back = msg.envelope_from_json(_envelope(payload).to_json())
    assert back.payload == payload and back.run == REF and back.type == payload.TYPE


@pytest.mark.parametrize("payload", EXAMPLES, ids=lambda p: p.TYPE)
def test_every_type_validates_against_the_schema(payload):
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema (add it to the test extra) validates")
    jsonschema.Draft202012Validator(msg.json_schema()).validate(json.loads(_envelope(payload).to_json()))


def test_a_message_missing_a_required_field_does_not_read_back():
    data = json.loads(_envelope(EXAMPLES[-1]).to_json())
    del data["payload"]["verdict"]
    with pytest.raises(ValueError, match="SessionVerdictMessage.*verdict"):
        msg.envelope_from_json(json.dumps(data))


def test_a_payload_of_the_wrong_shape_fails_the_schema():
    jsonschema = pytest.importorskip("jsonschema")
    data = json.loads(_envelope(EXAMPLES[-1]).to_json())
    del data["payload"]["verdict"]
    with pytest.raises(jsonschema.ValidationError, match="verdict"):
        jsonschema.Draft202012Validator(msg.json_schema()).validate(data)


def test_readers_refuse_a_newer_major_version_and_ignore_unknown_fields():
    data = json.loads(_envelope(EXAMPLES[3]).to_json())
    data["payload"]["added_in_a_minor_change"] = 1
    assert msg.envelope_from_json(json.dumps(data)).payload == EXAMPLES[3]
    data["version"] = msg.SCHEMA_VERSION + 1
    with pytest.raises(ValueError, match="newer"):
        msg.envelope_from_json(json.dumps(data))
    with pytest.raises(ValueError, match="unknown SEMC message type"):
        msg.payload_type("semc.nothing")
