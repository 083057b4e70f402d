/**
 * The built-in AMPs (DESIGN §1).
 * @module
 */
import type { AmpPlugin } from "../plugin/types.ts";
import { controlV1 } from "./control.ts";
import { fileV1 } from "./file.ts";
import { notificationV1 } from "./notification.ts";
import { presenceV1 } from "./presence.ts";
import { receiptV1 } from "./receipt.ts";
import { streamV1 } from "./stream.ts";
import { textV1, textV2 } from "./text.ts";

export {
  type Control,
  CONTROL_ACTIONS,
  CONTROL_TYPE,
  type ControlAction,
  controlV1,
} from "./control.ts";
export { DEFAULT_CHUNK_SIZE, FILE_TYPE, type FileMessage, fileV1, MAX_FILE_BYTES } from "./file.ts";
export { type Notification, NOTIFICATION_TYPE, notificationV1 } from "./notification.ts";
export {
  type Presence,
  PRESENCE_STATUSES,
  PRESENCE_TYPE,
  type PresenceStatus,
  presenceV1,
} from "./presence.ts";
export {
  type Receipt,
  RECEIPT_STATUSES,
  RECEIPT_TYPE,
  type ReceiptStatus,
  receiptV1,
} from "./receipt.ts";
export {
  MAX_STREAM_CHUNK,
  MIN_STREAM_CHUNK,
  STREAM_TYPE,
  type StreamDescriptor,
  streamV1,
} from "./stream.ts";
export { MAX_TEXT_BYTES, TEXT_TYPE, type TextMessage, textV1, textV2 } from "./text.ts";

/** Every built-in AMP. */
export function builtinAmps(): AmpPlugin[] {
  return [
    textV1,
    textV2,
    notificationV1,
    receiptV1,
    presenceV1,
    controlV1,
    fileV1,
    streamV1,
  ] as AmpPlugin[];
}
