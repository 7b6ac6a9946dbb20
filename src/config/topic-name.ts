/**
 * Topic names: 1–249 characters of `[a-zA-Z0-9._-]`, never `.` or `..` (Kafka's rule). A
 * topic name becomes a directory name, so this check is also what keeps a name from escaping
 * the data directory (`../x`, `/etc`).
 */
import { BrokerError } from '../errors/index.js';
import { limits } from './limits.js';

const LEGAL = /^[a-zA-Z0-9._-]+$/;

export function isValidTopicName(name: string): boolean {
  return (
    name.length >= 1 &&
    name.length <= limits.topicNameLengthMax &&
    LEGAL.test(name) &&
    name !== '.' &&
    name !== '..'
  );
}

/** Throws INVALID_TOPIC_NAME with a message that says what a valid name looks like. */
export function validateTopicName(name: string): void {
  if (isValidTopicName(name)) return;
  const shown = name.length > 60 ? `${name.slice(0, 60)}…` : name;
  throw new BrokerError(
    'INVALID_TOPIC_NAME',
    `invalid topic name ${JSON.stringify(shown)}: use 1–${limits.topicNameLengthMax} characters of a-z A-Z 0-9 . _ - (not "." or "..")`,
    { topic: name.slice(0, limits.topicNameLengthMax) },
  );
}
