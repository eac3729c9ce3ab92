"""Checks sshkeep's MCP contract with the official MCP Python SDK (an independent client).

Usage: contract.py SSHKEEP_BINARY CONNECTION_NAME
CONNECTION_NAME is a saved connection that logs in. The environment (SSHKEEP_HOME, HOME, ...)
is passed on to the server. Prints one JSON line with what it saw and exits non-zero if
anything is off.
"""

import asyncio
import json
import os
import subprocess
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def attr(obj, snake, camel):
    """The SDK's field, under its 2.x (snake_case) or 1.x (camelCase) name."""
    return getattr(obj, snake) if hasattr(obj, snake) else getattr(obj, camel)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def cli_words(text):
    return any(w in text for w in ("`sshkeep key", "`sshkeep conn", "`sshkeep ps", "--key"))


async def session_checks(binary, conn):
    seen = {}
    params = StdioServerParameters(command=binary, args=["mcp"], env=dict(os.environ))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            listed = await session.list_tools()
            size = len(json.dumps(listed.model_dump(mode="json", by_alias=True, exclude_none=True)))
            seen["toolsListBytes"] = size
            # 12 KiB of descriptions and schemas, plus the four annotation hints of each tool.
            check(size <= 14 * 1024, f"tools/list is {size} bytes")
            for t in listed.tools:
                ann = attr(t, "annotations", "annotations")
                check(ann is not None, f"{t.name} has no annotations")
                if ann is not None:
                    ro = attr(ann, "read_only_hint", "readOnlyHint")
                    check(isinstance(ro, bool), f"{t.name} has no readOnlyHint")
                    if t.name == "ssh_exec":
                        check(attr(ann, "destructive_hint", "destructiveHint") is True, "ssh_exec is not marked destructive")
            for t in listed.tools:
                schema = json.dumps(attr(t, "input_schema", "inputSchema"))
                for bloat in ("$schema", "$defs", "oneOf", '"null"', '"format"'):
                    check(bloat not in schema, f"{t.name} schema has {bloat}")

            async def call(name, args):
                r = await session.call_tool(name, args)
                return r, attr(r, "is_error", "isError"), (attr(r, "structured_content", "structuredContent") or {})

            # 11: one vocabulary both ways.
            r, err, s = await call("ssh_conn", {"op": "show", "connectionId": conn})
            check(not err, f"show: {r.content}")
            check({"connectionId", "username", "keyName"} <= set(s), f"conn names: {sorted(s)}")
            check(not ({"id", "user", "key"} & set(s)), f"old names: {sorted(s)}")
            r, err, s = await call("ssh_bulk_exec", {"commands": ["true"], "connectionIds": [conn]})
            check(not err and "bulkExecId" in s, f"bulk: {s}")
            bulk = s["bulkExecId"]
            for _ in range(600):
                r, err, st = await call("ssh_exec", {"op": "status", "bulkExecId": bulk})
                if st.get("state") != "running":
                    break
                await asyncio.sleep(0.1)
            check(st.get("bulkExecId") == bulk and "bulkId" not in st, f"bulk status: {st}")

            # 12: unknown arguments refused, by name.
            r, err, s = await call("ssh_conn", {"op": "save", "name": "x", "host": "127.0.0.1", "username": "u", "key": "k"})
            check(err, "an unknown argument is refused")
            check(s.get("error", {}).get("argument") == "key", f"names the argument: {s}")
            check("keyName" in s["error"].get("accepted", []), f"names the accepted ones: {s}")

            # 13: every error carries structuredContent, in tool calls.
            r, err, s = await call("ssh_exec", {"commandId": "x"})
            check(err and s.get("error", {}).get("argument") == "op", f"missing op: {s}")
            r, err, s = await call("ssh_key", {"op": "show", "keyName": "no-such-key"})
            text = r.content[0].text
            check(err and s["error"]["code"] == "not_found", f"unknown key: {s}")
            check("ssh_key op=list" in text and not cli_words(text), f"hint: {text}")

            # 15: logs once, ignoreCase, which step failed.
            r, err, s = await call("ssh_exec", {"op": "run", "connectionId": conn, "command": ["printf 'Yes\\nno\\nYES\\n'", "false", "echo never"]})
            cid = s["commandId"]
            for _ in range(600):
                r, err, st = await call("ssh_exec", {"op": "status", "commandId": cid})
                if st["state"] not in ("queued", "running"):
                    break
                await asyncio.sleep(0.1)
            check("step 2 of 3" in (st.get("error") or ""), f"failed step: {st}")
            r, err, s = await call("ssh_exec", {"op": "logs", "commandId": cid, "grep": "yes", "ignoreCase": True})
            texts = [l.split("] ", 1)[1] for l in r.content[0].text.splitlines() if l.startswith("[") and "] " in l]
            check(texts == ["Yes", "YES"], f"ignoreCase: {r.content[0].text}")
            check(s.get("lines") == 2 and "Yes" not in json.dumps(s), f"lines once: {s}")

            # 16: one unknown bulk target fails alone.
            r, err, s = await call("ssh_bulk_exec", {"commands": ["true"], "connectionIds": [conn, "no-such-conn"]})
            check(not err, f"bulk with an unknown name: {r.content}")
            bulk = s["bulkExecId"]
            for _ in range(600):
                r, err, st = await call("ssh_exec", {"op": "status", "bulkExecId": bulk})
                if st.get("state") != "running":
                    break
                await asyncio.sleep(0.1)
            states = {t["name"]: (t["state"], t.get("errorCode")) for t in st["targets"]}
            check(states.get(conn) == ("completed", None), f"targets: {states}")
            check(states.get("no-such-conn") == ("failed", "not_found"), f"targets: {states}")
            seen["contract"] = "ok"

    # 14: --minimal hides tools, which stay callable and are found with their schemas.
    params = StdioServerParameters(command=binary, args=["mcp", "--minimal"], env=dict(os.environ))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            names = sorted(t.name for t in (await session.list_tools()).tools)
            check(names == ["ssh_conn", "ssh_exec", "ssh_server_status", "ssh_tool_search"], f"minimal: {names}")
            r = await session.call_tool("ssh_tool_search", {"query": "upload a file"})
            found = attr(r, "structured_content", "structuredContent")["results"]
            check(found[0]["tool"] == "ssh_sftp" and len(found) <= 3, f"search: {[f['tool'] for f in found]}")
            check("localPath" in found[0]["inputSchema"]["properties"], f"schema: {found[0]}")
            r = await session.call_tool("ssh_key", {"op": "list"})
            check(not attr(r, "is_error", "isError"), f"hidden tool callable: {r.content}")
            seen["minimal"] = "ok"
    return seen


def parse_error_check(binary):
    """17: the SDK only sends valid JSON, so this one speaks raw JSON-RPC on the pipe."""
    p = subprocess.Popen([binary, "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env=dict(os.environ), text=True)
    try:
        p.stdin.write('{"jsonrpc": "2.0", "id": 1, "method": \n')
        p.stdin.flush()
        reply = json.loads(p.stdout.readline())
        check(reply.get("error", {}).get("code") == -32700 and reply.get("id") is None, f"parse error: {reply}")
    finally:
        p.kill()
        p.wait()
    return "ok"


if __name__ == "__main__":
    out = asyncio.run(session_checks(sys.argv[1], sys.argv[2]))
    out["parseError"] = parse_error_check(sys.argv[1])
    print(json.dumps(out))
