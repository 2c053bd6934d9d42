"""The orders function: one POST to the partner API. It knows nothing of Egret: urllib honours
HTTPS_PROXY, which /opt/egret-wrapper set, so the call goes through the Egret extension."""
import json
import urllib.error
import urllib.request


def handler(event, context):
    body = json.dumps({"orderId": event["orderId"]}).encode()
    request = urllib.request.Request(
        "https://api.partner.example/v1/orders", data=body, method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": event["idempotencyKey"]})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as e:
        # An Egret refusal is an HTTP error too; its Proxy-Status names why.
        raise RuntimeError(f"partner call failed: {e.code} {e.headers.get('Proxy-Status', '')}") from e
    return {"status": "sent", "partnerReference": answer.get("reference")}
