"""A caller of activity-quota in Python (pika), knowing only the AsyncAPI document.

Every queue name, routing key and exchange comes from docs/contract/asyncapi.json (by channel id),
never from this file. Usage: python_client.py ASYNCAPI_JSON AMQP_URL USER SKU ACTIVITY
Prints one JSON object with what it saw; exits non-zero on a timeout or a broker error.
"""
import json
import sys
import time
import uuid

import pika

doc_path, url, user, sku, activity = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
with open(doc_path, encoding="utf-8") as f:
    doc = json.load(f)
channels = doc["channels"]


def queue(channel_id):
    binding = channels[channel_id]["bindings"]["amqp"]
    assert binding["is"] == "queue", channel_id
    return channels[channel_id]["address"]


def event(channel_id):
    binding = channels[channel_id]["bindings"]["amqp"]
    assert binding["is"] == "routingKey", channel_id
    return binding["exchange"]["name"], channels[channel_id]["address"]


conn = pika.BlockingConnection(pika.URLParameters(url))
ch = conn.channel()
ch.confirm_delivery()  # publishes raise if the broker nacks or returns them

inbox = ch.queue_declare(queue="", exclusive=True, auto_delete=True).method.queue
events = ch.queue_declare(queue="", exclusive=True, auto_delete=True).method.queue
for cid in ("rechargeCompleted", "rechargeRejected", "partakeCreated"):
    exchange, key = event(cid)
    ch.exchange_declare(exchange=exchange, exchange_type="topic", durable=True, passive=True)
    ch.queue_bind(queue=events, exchange=exchange, routing_key=key)

props = lambda **kw: pika.BasicProperties(content_type="application/json", delivery_mode=2, message_id=str(uuid.uuid4()), **kw)


def send(channel_id, payload, **kw):
    ch.basic_publish(exchange="", routing_key=queue(channel_id), body=json.dumps(payload).encode(), properties=props(**kw), mandatory=True)


def wait(q, match, what, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        method, properties, body = ch.basic_get(queue=q, auto_ack=True)
        if method is None:
            conn.sleep(0.05)
            continue
        msg = json.loads(body)
        if match(method, properties, msg):
            return method, properties, msg
    sys.stderr.write(f"timed out waiting for {what}\n")
    sys.exit(3)


def call(channel_id, payload):
    cid = str(uuid.uuid4())
    send(channel_id, payload, reply_to=inbox, correlation_id=cid)
    return wait(inbox, lambda m, p, b: p.correlation_id == cid, f"a reply from {queue(channel_id)}")[2]


out_no = f"py-{uuid.uuid4()}"
send("recharge", {"userId": user, "sku": sku, "outBusinessNo": out_no})
method, properties, recharged = wait(events, lambda m, p, b: b["data"].get("outBusinessNo") == out_no, "recharge.completed")
before = call("accountQuery", {"userId": user, "activityId": activity})
partaken = call("partake", {"userId": user, "activityId": activity})
order_id = partaken["data"]["orderId"]
_, created_props, created = wait(events, lambda m, p, b: b["data"].get("orderId") == order_id, "partake.created")
after = call("accountQuery", {"userId": user, "activityId": activity})
used = call("raffleOrderUsed", {"userId": user, "orderId": order_id})
used_again = call("raffleOrderUsed", {"userId": user, "orderId": order_id})
bad = call("partake", {"userId": "", "activityId": activity})

print(json.dumps({
    "recharged": {"routingKey": method.routing_key, "messageId": properties.message_id, "type": properties.type, "body": recharged},
    "before": before,
    "partaken": partaken,
    "created": {"messageId": created_props.message_id, "body": created},
    "after": after,
    "used": used,
    "usedAgain": used_again,
    "bad": bad,
}, ensure_ascii=False))
conn.close()
