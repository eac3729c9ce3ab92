"""Progress, cancellation and resources of `sshkeep mcp`, seen by the official MCP Python SDK.

Usage: progress.py SSHKEEP_BINARY CONNECTION_NAME
The environment (SSHKEEP_HOME, HOME, ...) is passed on to the server. Prints one JSON line with
what it saw and exits non-zero if anything is off.
"""

import asyncio
import json
import os
import sys
import time

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError


def attr(obj, snake, camel):
    """The SDK's field, under its 2.x (snake_case) or 1.x (camelCase) name."""
    return getattr(obj, snake) if hasattr(obj, snake) else getattr(obj, camel)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def main(binary: str, conn: str) -> dict:
    params = StdioServerParameters(command=binary, args=["mcp"], env=dict(os.environ))
    seen = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            caps = attr(init, "capabilities", "capabilities")
            check(caps.resources is not None, f"resources capability declared: {caps}")

            async def call(name, args, **kw):
                r = await session.call_tool(name, args, **kw)
                s = attr(r, "structured_content", "structuredContent") or {}
                check(not attr(r, "is_error", "isError"), f"{name} {args} failed: {r.content}")
                return r, s

            _, s = await call("ssh_exec", {"op": "open", "connectionId": conn})
            session_id = s["sessionId"]

            async def run(command):
                _, s = await call(
                    "ssh_exec", {"op": "run", "sessionId": session_id, "command": command}
                )
                return s["commandId"]

            # 1. A wait with a progress callback hears progress, then the command's end.
            notes = []

            async def on_progress(progress, total, message):
                notes.append((progress, total, message))

            short = await run("sleep 3; echo done")
            r, s = await call(
                "ssh_exec",
                {"op": "wait", "commandId": short, "timeout": 60},
                progress_callback=on_progress,
            )
            check(s["state"] == "completed", f"waited to the end: {s}")
            check(len(notes) >= 1, f"progress notifications: {notes}")
            check(all(n[2] for n in notes), f"each with a message: {notes}")
            progresses = [n[0] for n in notes]
            check(progresses == sorted(set(progresses)), f"progress grows: {notes}")
            seen["progress_notes"] = len(notes)

            # 2. A cancelled wait gives control back at once; the command keeps running.
            long = await run("sleep 60")
            started = time.monotonic()
            with anyio.move_on_after(2) as scope:
                await session.call_tool(
                    "ssh_exec", {"op": "wait", "commandId": long, "timeout": 50}
                )
            check(scope.cancelled_caught, "the wait was still running when cancelled")
            # The adapter answers the next call while the cancelled wait is gone.
            _, s = await call("ssh_exec", {"op": "status", "commandId": long})
            elapsed = time.monotonic() - started
            check(elapsed < 20, f"control came back after {elapsed:.1f}s")
            check(s["state"] == "running", f"the command keeps running: {s}")
            seen["cancelled_wait_running"] = s["state"]
            await call("ssh_exec", {"op": "cancel", "commandId": long})

            # 3. A command's log as a resource, redacted as the tool replies are.
            secret = "api_key=Zq8vN3xLk2Pw9RtY"
            logged = await run(f"echo log-line-one; echo '{secret}'; echo log-line-three")
            await call("ssh_exec", {"op": "wait", "commandId": logged, "timeout": 60})
            r, _ = await call("ssh_exec", {"op": "logs", "commandId": logged})
            tool_lines = [
                line.split("] ", 1)[1]
                for line in r.content[0].text.splitlines()
                if line.startswith("[") and "] " in line
            ]

            listed = await session.list_resources()
            uris = [str(x.uri) for x in listed.resources]
            log_uri = f"sshkeep://commands/{logged}/log"
            check(log_uri in uris, f"{log_uri} listed: {uris}")
            check(uris.index(log_uri) < uris.index(f"sshkeep://commands/{short}/log"), f"newest first: {uris}")
            contents = (await session.read_resource(log_uri)).contents
            text = contents[0].text
            check(attr(contents[0], "mime_type", "mimeType") == "text/plain", f"{contents[0]}")
            check(text.splitlines() == tool_lines, f"resource {text!r} vs tool {tool_lines}")
            check("log-line-one" in text and "log-line-three" in text, text)
            check("Zq8vN3xLk2Pw9RtY" not in text and "[redacted" in text, f"redacted: {text}")

            templates = await session.list_resource_templates()
            names = sorted(attr(t, "uri_template", "uriTemplate") for t in templates.resource_templates)
            check(
                names == ["sshkeep://commands/{commandId}/log", "sshkeep://shells/{shellId}/screen"],
                f"templates: {names}",
            )

            try:
                await session.read_resource("sshkeep://commands/cmd-nosuchid/log")
                check(False, "an unknown command has no log")
            except MCPError as e:
                check("cmd-nosuchid" in str(e), f"the error names the id: {e}")
                seen["unknown_error"] = str(e)

            # 4. A shell's screen as a resource.
            _, s = await call("ssh_shell", {"op": "open", "connectionId": conn})
            shell_id = s["shellId"]
            await call("ssh_shell", {"op": "send", "shellId": shell_id, "text": "echo screen-$((40+2))", "enter": True})
            _, s = await call(
                "ssh_shell",
                {"op": "wait", "shellId": shell_id, "pattern": "screen-42", "timeout": 30},
                progress_callback=on_progress,
            )
            check(s.get("matched") is True, f"the shell printed: {s}")
            screen_uri = f"sshkeep://shells/{shell_id}/screen"
            listed = await session.list_resources()
            check(screen_uri in [str(x.uri) for x in listed.resources], "the shell is listed")
            screen = (await session.read_resource(screen_uri)).contents[0].text
            check("screen-42" in screen, f"screen: {screen!r}")
            await call("ssh_shell", {"op": "close", "shellId": shell_id})
            seen["screen"] = "ok"
            await call("ssh_exec", {"op": "close", "sessionId": session_id})
    seen["progress"] = "ok"
    return seen


if __name__ == "__main__":
    seen = asyncio.run(main(sys.argv[1], sys.argv[2]))
    print(json.dumps(seen))
