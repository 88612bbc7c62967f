"""/api/v1/admin: admins see everyone's predictions, manage accounts, read the audit log; each read is audited."""

from __future__ import annotations

import pytest

from constants import AuditAction, Role
from tests.resources.helpers import assert_error


def audit(client, admin, **query) -> list[dict]:
    response = client.get("/api/v1/admin/audit", query_string={"per_page": 100, **query}, headers=admin.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


@pytest.mark.parametrize("path", ["/api/v1/admin/predictions", "/api/v1/admin/users", "/api/v1/admin/audit"])
def test_admin_routes_are_403_for_patients(client, patient, path):
    assert_error(client.get(path, headers=patient.headers), 403, "forbidden")


def test_admin_lists_everyones_predictions_with_owners_and_the_read_is_audited(
    client, predict, make_account, admin, modality
):
    alice, bob = make_account(), make_account()
    a = predict(alice, modality)
    b = predict(bob, modality)
    body = client.get("/api/v1/admin/predictions", headers=admin.headers).get_json()
    assert body["total"] == 2 and [item["id"] for item in body["items"]] == [b["id"], a["id"]]
    assert body["items"][0]["owner"] == {"id": bob.id, "email": bob.email}
    only_alice = client.get(f"/api/v1/admin/predictions?user_id={alice.id}", headers=admin.headers).get_json()
    assert [item["id"] for item in only_alice["items"]] == [a["id"]]
    events = audit(client, admin, action=AuditAction.ADMIN_LIST_PREDICTIONS)
    assert len(events) == 2 and events[0]["actor_id"] == admin.id
    assert set(events[1]["details"]["prediction_ids"]) == {a["id"], b["id"]}


def test_admin_reads_of_a_record_and_its_images_are_audited(client, predict, patient, admin, modality):
    made = predict(patient, modality)
    record = client.get(f"/api/v1/admin/predictions/{made['id']}", headers=admin.headers)
    assert record.status_code == 200 and record.get_json()["owner"]["email"] == patient.email
    assert record.get_json()["image_url"] == f"/api/v1/admin/predictions/{made['id']}/image"
    assert client.get(record.get_json()["image_url"], headers=admin.headers).status_code == 200
    assert client.get(record.get_json()["heatmap_url"], headers=admin.headers).status_code == 200
    events = audit(client, admin, action=AuditAction.PREDICTION_READ, target_id=made["id"])
    assert sorted(e["details"]["what"] for e in events) == ["heatmap", "image", "record"]
    assert all(e["actor_id"] == admin.id and e["details"]["owner_id"] == patient.id for e in events)


def test_admin_on_the_patient_routes_sees_only_their_own(client, predict, patient, admin, modality):
    made = predict(patient, modality)
    assert_error(client.get(f"/api/v1/predictions/{made['id']}", headers=admin.headers), 404)


def test_admin_lists_users_and_the_read_is_audited(client, patient, admin):
    body = client.get("/api/v1/admin/users?role=patient", headers=admin.headers).get_json()
    assert [user["email"] for user in body["items"]] == [patient.email] and body["total"] == 1
    assert client.get(f"/api/v1/admin/users/{patient.id}", headers=admin.headers).get_json()["email"] == patient.email
    actions = [e["action"] for e in audit(client, admin, actor_id=admin.id)]
    assert AuditAction.ADMIN_LIST_USERS in actions and AuditAction.ADMIN_READ_USER in actions


def test_admin_disables_a_user_who_is_locked_out_at_once_and_enables_again(client, patient, admin):
    response = client.patch(f"/api/v1/admin/users/{patient.id}", json={"is_active": False}, headers=admin.headers)
    assert response.status_code == 200 and response.get_json()["is_active"] is False
    assert_error(client.get("/api/v1/predictions", headers=patient.headers), 401)
    client.patch(f"/api/v1/admin/users/{patient.id}", json={"is_active": True}, headers=admin.headers)
    assert client.get("/api/v1/predictions", headers=patient.headers).status_code == 200
    actions = [e["action"] for e in audit(client, admin, target_id=patient.id)]
    assert AuditAction.USER_DISABLE in actions and AuditAction.USER_ENABLE in actions


def test_admin_changes_a_role(client, patient, admin):
    response = client.patch(f"/api/v1/admin/users/{patient.id}", json={"role": "admin"}, headers=admin.headers)
    assert response.status_code == 200 and response.get_json()["role"] == Role.ADMIN
    assert client.get("/api/v1/admin/users", headers=patient.headers).status_code == 200


@pytest.mark.parametrize("body", [{"is_active": False}, {"role": "patient"}])
def test_admin_cannot_lock_themselves_out(client, admin, body):
    assert_error(client.patch(f"/api/v1/admin/users/{admin.id}", json=body, headers=admin.headers), 409, "own_account")


@pytest.mark.parametrize("body", [{}, {"role": "owner"}, {"is_active": "no"}])
def test_bad_user_changes_are_422(client, patient, admin, body):
    assert_error(client.patch(f"/api/v1/admin/users/{patient.id}", json=body, headers=admin.headers), 422)


def test_audit_filters_by_action_target_and_time(client, predict, patient, admin, modality):
    made = predict(patient, modality)
    created = audit(client, admin, action=AuditAction.PREDICTION_CREATE)
    assert [(e["actor_id"], e["target_id"]) for e in created] == [(patient.id, made["id"])]
    assert (
        audit(client, admin, target_type="prediction", target_id=made["id"])[0]["action"]
        == AuditAction.PREDICTION_CREATE
    )
    assert audit(client, admin, before="2000-01-01T00:00:00Z") == []
    assert audit(client, admin, after=created[0]["at"], action=AuditAction.PREDICTION_CREATE) == created
    reads = audit(client, admin, action=AuditAction.ADMIN_READ_AUDIT)
    assert len(reads) >= 4  # every call above was itself recorded
