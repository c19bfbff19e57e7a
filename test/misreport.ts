/**
 * Fault injection for errno: a libc call whose errno reads as something the
 * kernel did not say. Imports the library's libc, so only tests that run with
 * FFI permission load it.
 *
 * @module
 */
import { libc } from "../src/socket.ts";

/**
 * Makes the next `libc[name]` call report `-reported` instead of what the
 * kernel said, when the kernel said `when`: errno misread after the call (seen
 * on Deno under load: EAGAIN and ENOENT for a connect under way). `"skip"`
 * does not make the call at all, as if a call reported made never was.
 * `undo()` restores the real call; `used()` says whether the misread happened.
 */
export function misreportErrno(
  name: "connect" | "accept4",
  when: number | "skip",
  reported: number,
): { undo: () => void; used: () => boolean } {
  const calls = libc as unknown as Record<string, (...args: unknown[]) => number>;
  const real = calls[name];
  let used = false;
  calls[name] = (...args) => {
    if (used) return real(...args);
    if (when !== "skip") {
      const r = real(...args);
      if (r !== when) return r;
    }
    used = true;
    return -reported;
  };
  return { undo: () => void (calls[name] = real), used: () => used };
}
