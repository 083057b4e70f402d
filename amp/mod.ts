/**
 * The built-in AMPs (DESIGN §1).
 * @module
 */
import type { AmpPlugin } from "../types.ts";
import { notificationV1 } from "./notification.ts";
import { textV1, textV2 } from "./text.ts";

export { type Notification, NOTIFICATION_TYPE, notificationV1 } from "./notification.ts";
export { MAX_TEXT_BYTES, TEXT_TYPE, type TextMessage, textV1, textV2 } from "./text.ts";

/** Every built-in AMP. */
export function builtinAmps(): AmpPlugin[] {
  return [textV1, textV2, notificationV1] as AmpPlugin[];
}
