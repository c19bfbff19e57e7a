/**
 * The `vsock` command line tool: netcat and socat for AF_VSOCK, and a port
 * forwarder. `vsock --help` lists the commands.
 *
 * ```sh
 * deno run --allow-ffi --allow-net jsr:@vsock/vsock/cli forward tcp:127.0.0.1:8080 vsock:3:80
 * bunx vsock-ffi forward vsock:5000 tcp:127.0.0.1:5000
 * ```
 *
 * @module
 */
import process from "node:process";
import { main } from "./cli/main.ts";

// Exit explicitly: an idle vsock reactor or stdin must not keep the process up.
process.exit(await main(process.argv.slice(2)));
