"""A prediction as a FHIR R4 transaction Bundle: DiagnosticReport, Observation, Device, Provenance.

Built as plain FHIR JSON and checked by fhir.resources' R4B models (R4B is R4 for these five resources),
so a Bundle that would not parse is never handed out. What the model asserted (the report and its
observation) carries the AIAST security label of HL7's AI Transparency on FHIR. The subject is a
logical reference to the account's opaque id: no name, email or date of birth.

Each entry is a conditional create on its identifier, so posting the same Bundle twice to a FHIR
server keeps one copy; its fullUrls (urn:uuid) and ids come from the prediction's id.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.interop.report import ClassProbability, Concept, FindingReport

FHIR_CONTENT_TYPE = "application/fhir+json"
AIAST = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "AIAST",
    "display": "Artificial Intelligence asserted",
}
UCUM = "http://unitsofmeasure.org"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
# Identifier systems of MedSight's own ids.
PREDICTION_SYSTEM = "urn:medsight:prediction"
ACCOUNT_SYSTEM = "urn:medsight:account"
MODEL_SYSTEM = "urn:medsight:model-sha256"
# SNOMED CT concepts from PS3.16's subset (pydicom.sr.codedict): what the report and observation are.
IMAGING_PROCEDURE = Concept("363679005", "SCT", "Imaging procedure")
FINDING = Concept("404684003", "SCT", "Finding")


def _concept(concept: Concept) -> dict[str, Any]:
    return {"coding": [{"system": concept.system, "code": concept.code, "display": concept.meaning}]}


def _instant(at: datetime) -> str:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


def _probability(value: float) -> dict[str, Any]:
    return {"value": value, "unit": "probability", "system": UCUM, "code": "1"}


def _ids(report: FindingReport) -> dict[str, str]:
    return {kind: str(uuid.uuid5(report.prediction_id, f"fhir {kind}")) for kind in ("report", "observation")} | {
        "device": str(uuid.uuid5(uuid.NAMESPACE_URL, f"medsight model {report.model.name} {report.model.version}")),
        "provenance": str(uuid.uuid5(report.prediction_id, "fhir provenance")),
    }


def _components(report: FindingReport) -> list[dict[str, Any]]:
    def probability(c: ClassProbability) -> dict[str, Any]:
        code = report.local(f"{c.name}.probability", f"Probability of {c.concept.meaning}")
        return {"code": _concept(code), "valueQuantity": _probability(c.probability)}

    components = [probability(c) for c in report.classes]
    member = report.local("prediction_set", "Finding not ruled out (prediction set)")
    for c in report.prediction_set or ():
        components.append({"code": _concept(member), "valueCodeableConcept": _concept(c.concept)})
    if report.set_coverage is not None:
        coverage = report.local("set_coverage", "Prediction set coverage")
        components.append({"code": _concept(coverage), "valueQuantity": _probability(report.set_coverage)})
    return components


# The report stays preliminary until a clinician has looked: final when they agree with the model, amended
# when they disagree or give another finding. The AI's own Observation stays what the model asserted.
_REVIEWED_STATUS = {"agree": "final", "disagree": "amended", "amend": "amended"}


def _report_status(report: FindingReport) -> str:
    return _REVIEWED_STATUS.get(report.review_verdict or "", "preliminary")


def _percent(probability: float) -> str:
    """Never "100%" for what is not certain, never "0%" for a chance that is there."""
    if 0 < probability < 0.005:
        return "<1%"
    if 0.995 <= probability < 1:
        return ">99%"
    return f"{probability:.0%}"


def _conclusion(report: FindingReport) -> str:
    text = f"Most probable: {report.finding.concept.meaning} ({_percent(report.finding.probability)})."
    text += f" {report.flag.meaning}: {'yes' if report.flagged else 'no'}."
    if report.prediction_set and report.set_coverage is not None:
        names = ", ".join(c.concept.meaning for c in report.prediction_set)
        text += f" Not ruled out at {report.set_coverage:.0%} coverage: {names}."
    if report.review_verdict is None:
        return text + " Preliminary: made by a model, not reviewed by a clinician."
    verdict = {"agree": "agrees", "disagree": "disagrees", "amend": "amends it"}[report.review_verdict]
    return text + f" Reviewed by a clinician, who {verdict}: {report.review_finding}."


def bundle(report: FindingReport) -> dict[str, Any]:
    """The prediction as a FHIR transaction Bundle (JSON), validated by fhir.resources."""
    from fhir.resources.R4B.bundle import Bundle

    ids = _ids(report)
    at = _instant(report.created_at)
    subject = {"identifier": {"system": ACCOUNT_SYSTEM, "value": str(report.subject_id)}}
    prediction = {"system": PREDICTION_SYSTEM, "value": str(report.prediction_id)}
    device = {
        "resourceType": "Device",
        "identifier": [{"system": MODEL_SYSTEM, "value": report.model.sha256}],
        "manufacturer": "MedSight",
        "deviceName": [{"name": report.model.name, "type": "model-name"}],
        "version": [{"value": report.model.version}],
        "url": report.model.card_url,
    }
    observation = {
        "resourceType": "Observation",
        "meta": {"security": [AIAST]},
        "identifier": [prediction],
        "status": "preliminary",
        "code": _concept(FINDING),
        "subject": subject,
        "effectiveDateTime": at,
        "issued": at,
        "device": {"reference": f"urn:uuid:{ids['device']}"},
        "valueCodeableConcept": _concept(report.finding.concept),
        "interpretation": [
            {
                "coding": [
                    {"system": INTERPRETATION, "code": "POS", "display": "Positive"}
                    if report.flagged
                    else {"system": INTERPRETATION, "code": "NEG", "display": "Negative"}
                ],
                "text": f"{report.flag.meaning}: {'yes' if report.flagged else 'no'}",
            }
        ],
        "component": _components(report),
    }
    diagnostic_report = {
        "resourceType": "DiagnosticReport",
        "meta": {"security": [AIAST]},
        "identifier": [prediction],
        "status": _report_status(report),
        "code": _concept(IMAGING_PROCEDURE),
        "subject": subject,
        "effectiveDateTime": at,
        "issued": at,
        "result": [{"reference": f"urn:uuid:{ids['observation']}"}],
        "conclusion": _conclusion(report),
        "conclusionCode": [_concept(report.finding.concept)],
    }
    provenance = {
        "resourceType": "Provenance",
        "target": [{"reference": f"urn:uuid:{ids['report']}"}, {"reference": f"urn:uuid:{ids['observation']}"}],
        "recorded": at,
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "code": "author",
                            "display": "Author",
                        }
                    ]
                },
                "who": {"reference": f"urn:uuid:{ids['device']}", "display": report.model.name},
            }
        ],
    }

    def entry(kind: str, resource: dict[str, Any], identifier: str) -> dict[str, Any]:
        return {
            "fullUrl": f"urn:uuid:{ids[kind]}",
            "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"], "ifNoneExist": identifier},
        }

    document = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            entry("device", device, f"identifier={MODEL_SYSTEM}|{report.model.sha256}"),
            entry("observation", observation, f"identifier={PREDICTION_SYSTEM}|{report.prediction_id}"),
            entry("report", diagnostic_report, f"identifier={PREDICTION_SYSTEM}|{report.prediction_id}"),
            entry("provenance", provenance, f"target=urn:uuid:{ids['report']}"),
        ],
    }
    Bundle.model_validate(document)  # raises on anything FHIR R4 would not accept
    return document
