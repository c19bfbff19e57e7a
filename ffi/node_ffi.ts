/**
 * The slice of Node's `node:ffi` (Node 26.1+) that the Node adapter uses.
 * Neither Deno nor `@types/node` types that module yet, so this file says what
 * we rely on, checked against Node 26.10.0; the adapter fetches the module
 * with `process.getBuiltinModule("node:ffi")` and casts it to {@link NodeFfi}.
 *
 * @module
 */

/** A `node:ffi` type name, in the spellings the adapter uses. */
export type NodeFfiType = "void" | "i32" | "u32" | "i64" | "u64" | "pointer";

/** A function or callback signature. */
export interface NodeFfiSignature {
  readonly arguments: readonly NodeFfiType[];
  readonly return: NodeFfiType;
}

/**
 * A value crossing the boundary: numbers for 32-bit types, bigint for 64-bit
 * ones and raw pointers (64-bit returns are always bigint), typed arrays and
 * `null` for pointers.
 */
export type NodeFfiValue = number | bigint | ArrayBufferView | null;

/** A bound native function. */
export type NodeFfiFunction = (...args: NodeFfiValue[]) => number | bigint | undefined;

/** A library opened by `dlopen`. */
export interface NodeDynamicLibrary {
  /** A C function pointer that calls `fn` on this thread; the pointer stays valid until unregistered. */
  registerCallback(signature: NodeFfiSignature, fn: (...args: (number | bigint)[]) => void): bigint;
  unregisterCallback(pointer: bigint): void;
  /** A symbol's address. */
  getSymbol(name: string): bigint;
}

/** What `node:ffi` exports and the adapter uses. */
export interface NodeFfi {
  /** `path` null: the symbols of the `node` binary itself (libuv among them). */
  dlopen(
    path: string | null,
    definitions: Record<string, NodeFfiSignature>,
  ): { lib: NodeDynamicLibrary; functions: Record<string, NodeFfiFunction> };
  /** This thread's `uv_loop_t*`. */
  getCurrentEventLoop(): bigint;
  /** With `copy` false, a view onto native memory that must outlive it. */
  toArrayBuffer(pointer: bigint, length: number, copy?: boolean): ArrayBuffer;
}
