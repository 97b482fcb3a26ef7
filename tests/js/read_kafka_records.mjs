// Reads Kafka records with the CloudEvents JavaScript SDK's Kafka binding, as a
// JavaScript subscriber of the public topics would.
//
// usage: node read_kafka_records.mjs RECORDS.json NODE_MODULES_DIR
// RECORDS.json: [{topic, partition, offset, key, headers: {name: value}, value}],
// the headers and value as the text the consumer received. Prints one JSON object
// per record: {position, ok: true, mode, event} with the event the SDK built (and
// validated against the CloudEvents 1.0 schema), or {position, ok: false, error}.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const [recordsPath, modulesDir] = process.argv.slice(2);
// the SDK is installed outside the repository: load it from where it was installed
const require = createRequire(join(modulesDir, "loader.cjs"));
const { Kafka, CloudEvent } = require("cloudevents");

const STRUCTURED = "application/cloudevents";

function read(record) {
  const message = { headers: record.headers, key: record.key, value: record.value };
  const event = Kafka.toEvent(message);
  if (!(event instanceof CloudEvent)) {
    throw new Error("not one CloudEvent (a batch?)");
  }
  event.validate();
  const contentType = Object.entries(record.headers).find(
    ([name]) => name.toLowerCase() === "content-type",
  );
  const mode = contentType && contentType[1].startsWith(STRUCTURED) ? "structured" : "binary";
  return { mode, event: event.toJSON() };
}

const records = JSON.parse(readFileSync(recordsPath, "utf-8"));
for (const record of records) {
  const position = `${record.topic}/${record.partition}/${record.offset}`;
  try {
    console.log(JSON.stringify({ position, ok: true, ...read(record) }));
  } catch (error) {
    console.log(JSON.stringify({ position, ok: false, error: String(error) }));
  }
}
