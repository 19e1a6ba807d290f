"""The cloud SMS adapter (Alibaba Cloud style) against a local fake on a real socket, and the
provider's callbacks for delivery reports and replies."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fake_cloud import ACCESS_KEY_ID, ACCESS_KEY_SECRET, CloudApi, RunningCloudApi
from outbox import RECEIPT_SECRET, message, run_jobs, send
from pydantic import SecretStr

from helpers import Client, assert_error
from patientline.channels import optouts, sms_templates
from patientline.channels.cloud import sign
from patientline.core import clock
from patientline.core.config import Settings

pytestmark = pytest.mark.usefixtures("templates")
RECEIPTS = "/api/channels/sms/receipts"


@pytest.fixture
def cloud(use_settings: Callable[..., Settings]) -> Iterator[CloudApi]:
    with RunningCloudApi() as api:
        use_settings(
            sms_adapter="http",
            sms_http_endpoint=api.url,
            sms_http_access_key_id=ACCESS_KEY_ID,
            sms_http_access_key_secret=SecretStr(ACCESS_KEY_SECRET),
            sms_http_timeout_seconds=5.0,
        )
        yield api


def test_the_signature_matches_the_providers_documented_example() -> None:
    params = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert sign(params, "testSecret", method="GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


async def test_a_text_goes_to_the_api_signed_with_its_template_and_variables(db: Any, cloud: CloudApi) -> None:
    queued = await send(db)
    assert await run_jobs(db) == 1
    [request] = cloud.requests
    assert request["PhoneNumbers"] == "13800138000" and request["SignName"] == "示例医院"
    assert request["TemplateCode"] == "SMS_480001" and request["OutId"] == str(queued.id)
    assert json.loads(request["TemplateParam"]) == {
        "type": "投诉",
        "reference": "WO-20261123-0001",
        "deadline": "11月25日17:00",
    }
    row = await message(db, queued.id)
    assert (row.status, row.provider, row.provider_ids) == ("sent", "http", ["BIZ1"])


async def test_the_delivery_report_callback_marks_the_text_delivered(db: Any, cloud: CloudApi, anon: Client) -> None:
    queued = await send(db)
    await run_jobs(db)
    report = [
        {
            "phone_number": "13800138000",
            "success": True,
            "err_code": "DELIVERED",
            "biz_id": "BIZ1",
            "out_id": str(queued.id),
            "sms_size": "1",
        }
    ]
    response = await anon.post(RECEIPTS, json=report, headers={"X-PatientLine-Token": RECEIPT_SECRET})
    assert response.status_code == 200 and response.json() == {"code": 0, "msg": "成功", "accepted": 1}
    assert (await message(db, queued.id)).status == "delivered"
    again = await anon.post(RECEIPTS, params={"token": RECEIPT_SECRET}, json=report)  # the provider repeats itself
    assert again.json()["accepted"] == 1 and (await message(db, queued.id)).status == "delivered"


async def test_a_failure_report_fails_the_text(db: Any, cloud: CloudApi, anon: Client) -> None:
    queued = await send(db)
    await run_jobs(db)
    report = [{"biz_id": "BIZ1", "success": False, "err_code": "MK:0001", "err_msg": "用户关机"}]
    await anon.post(RECEIPTS, json=report, headers={"X-PatientLine-Token": RECEIPT_SECRET})
    row = await message(db, queued.id)
    assert row.status == "failed" and "MK:0001" in (row.last_error or "")


@pytest.mark.parametrize(
    ("answer", "status", "attempts"),
    [
        ((200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"}), "failed", 1),
        ((200, {"Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": "模板不合法"}), "failed", 1),
        ((200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发流控"}), "sending", 1),
        ((500, {"Code": "isp.SYSTEM_ERROR", "Message": "系统错误"}), "sending", 1),
    ],
)
async def test_error_codes_fail_the_text_or_retry_it(
    db: Any, cloud: CloudApi, answer: tuple[int, dict[str, Any]], status: str, attempts: int
) -> None:
    cloud.answers = [answer]
    queued = await send(db)
    await run_jobs(db)
    row = await message(db, queued.id)
    assert (row.status, row.attempts) == (status, attempts)
    assert answer[1]["Code"] in (row.last_error or "") or "HTTP 500" in (row.last_error or "")
    if status == "sending":
        clock.advance(timedelta(seconds=5))
        await run_jobs(db)
        assert (await message(db, queued.id)).status == "sent"


async def test_a_wrong_secret_is_a_retry_not_a_lost_message(db: Any, cloud: CloudApi, use_settings: Any) -> None:
    use_settings(
        sms_adapter="http",
        sms_http_endpoint=cloud.url,
        sms_http_access_key_id=ACCESS_KEY_ID,
        sms_http_access_key_secret=SecretStr("wrong"),
    )
    queued = await send(db)
    await run_jobs(db)
    row = await message(db, queued.id)
    assert row.status == "sending" and "SignatureDoesNotMatch" in (row.last_error or "")


async def test_a_template_without_a_provider_code_fails(db: Any, cloud: CloudApi) -> None:
    async with db.sessions() as session, session.begin():
        row = await sms_templates.find_template(session, code="wo_received")
        assert row is not None
        row.provider_template_code = ""
    queued = await send(db)
    await run_jobs(db)
    assert (await message(db, queued.id)).status == "failed" and cloud.requests == []


async def test_an_unreachable_api_or_missing_credentials_mean_a_retry(db: Any, use_settings: Any) -> None:
    use_settings(
        sms_adapter="http",
        sms_http_endpoint="http://127.0.0.1:9/",
        sms_http_access_key_id="k",
        sms_http_access_key_secret=SecretStr("s"),
        sms_http_timeout_seconds=2.0,
    )
    first = await send(db)
    await run_jobs(db)
    assert (await message(db, first.id)).status == "sending"
    use_settings(sms_adapter="http", sms_http_access_key_id="")
    second = await send(db, phone="13912345678")
    await run_jobs(db)
    assert "access key" in ((await message(db, second.id)).last_error or "")


async def test_callbacks_need_the_shared_secret(anon: Client, use_settings: Any) -> None:
    report = [{"biz_id": "BIZ1", "success": True}]
    assert_error(await anon.post(RECEIPTS, json=report), 401, "bad_callback_token")
    assert_error(await anon.post(RECEIPTS, json=report, headers={"X-PatientLine-Token": "guess"}), 401)
    assert_error(await anon.post("/api/channels/sms/replies", params={"token": "guess"}, json=[]), 401)
    use_settings(sms_receipt_secret=SecretStr(""))
    assert_error(await anon.post(RECEIPTS, json=report, headers={"X-PatientLine-Token": ""}), 403, "callbacks_disabled")
    use_settings()
    response = await anon.post(RECEIPTS, json={"not": "a list"}, headers={"X-PatientLine-Token": RECEIPT_SECRET})
    assert_error(response, 422)
    unknown = await anon.post(RECEIPTS, json=report, headers={"X-PatientLine-Token": RECEIPT_SECRET})
    assert unknown.json()["accepted"] == 0


async def test_a_reply_of_td_through_the_callback_opts_the_number_out(db: Any, anon: Client) -> None:
    replies = [
        {"phone_number": "13800138000", "content": "TD", "sign_name": "示例医院", "dest_code": "8585"},
        {"phone_number": "not-a-phone", "content": "TD"},
    ]
    response = await anon.post(
        "/api/channels/sms/replies", json=replies, headers={"X-PatientLine-Token": RECEIPT_SECRET}
    )
    assert response.status_code == 200 and response.json()["accepted"] == 1
    async with db.sessions() as session:
        assert await optouts.is_opted_out(session, phone="+8613800138000")
