// Read a topic from the beginning with KafkaJS and decode every record with the CloudEvents
// JavaScript SDK's Kafka binding, as an integrator's Node consumer would. One JSON line per
// record: {"ok": true, id, type, source, subject, data} or {"ok": false, error}.
// usage: node read.mjs BOOTSTRAP TOPIC COUNT [TIMEOUT_MS]   (exit 1 if COUNT are not read)
import { Kafka as CE } from "cloudevents";
import { Kafka, logLevel } from "kafkajs";

const [bootstrap, topic, countArg, timeoutArg] = process.argv.slice(2);
const want = Number(countArg);
const kafka = new Kafka({ clientId: "baton-ce-js-check", brokers: bootstrap.split(","), logLevel: logLevel.ERROR });
const consumer = kafka.consumer({ groupId: `baton-ce-js-${process.pid}-${Date.now()}` });
let seen = 0;
let done;
const finished = new Promise((resolve) => { done = resolve; });

function decode(message) {
  const headers = {};
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    headers[name] = Buffer.isBuffer(value) ? value.toString("utf8") : String(value);
  }
  try {
    const event = CE.toEvent({ key: message.key?.toString("utf8"), value: message.value?.toString("utf8"), headers });
    const one = Array.isArray(event) ? event[0] : event;
    return { ok: true, id: one.id, type: one.type, source: one.source, subject: one.subject, data: one.data };
  } catch (err) {
    return { ok: false, error: String(err?.message ?? err) };
  }
}

await consumer.connect();
await consumer.subscribe({ topic, fromBeginning: true });
const timer = setTimeout(() => done(false), Number(timeoutArg ?? 30000));
await consumer.run({
  eachMessage: async ({ message }) => {
    process.stdout.write(JSON.stringify(decode(message)) + "\n");
    seen += 1;
    if (seen >= want) done(true);
  },
});
const ok = await finished;
clearTimeout(timer);
await consumer.disconnect();
if (!ok) {
  console.error(`read ${seen} of ${want} records from ${topic}`);
  process.exit(1);
}
