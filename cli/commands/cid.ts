/**
 * `vsock cid`: this machine's CID.
 *
 * @module
 */
import process from "node:process";
import { type Command, errorText, expectPositionals, parseCommand } from "../command.ts";

/** See the module comment. */
export const cid: Command = {
  name: "cid",
  summary: "print this machine's CID",
  usage: `Usage: vsock cid

Prints this machine's vsock context id (CID) on stdout: a guest's own CID, 2 on a host.
Exits 1 with the reason on stderr when there is none (no /dev/vsock, no vsock transport).`,
  async run(args: string[]): Promise<number> {
    const { positionals } = parseCommand(args, {});
    expectPositionals(positionals, []);
    try {
      const { localCid } = await import("../../mod.ts");
      process.stdout.write(`${localCid()}\n`);
      return 0;
    } catch (error) {
      process.stderr.write(`vsock cid: this machine has no vsock CID: ${errorText(error)}\n`);
      return 1;
    }
  },
};
