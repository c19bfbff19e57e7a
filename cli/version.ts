/**
 * The tool's version, kept equal to package.json's and deno.json's by a unit
 * test (neither file is part of every package the tool ships in).
 *
 * @module
 */

/** What `vsock --version` prints. */
export const VERSION = "0.1.0";
