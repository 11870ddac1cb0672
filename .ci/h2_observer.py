"""A TCP relay that reads the HTTP/2 frames a client sends and logs what
arrived: every request header (decoded with hpack) and, for each gRPC
message, whether its compressed flag is set. Used behind socat's TLS
termination so CI can see that a gRPC export carried its header and gzip.

    python .ci/h2_observer.py LISTEN_PORT UPSTREAM_PORT LOG_FILE
"""

import asyncio
import sys

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, CONTINUATION = 0x0, 0x1, 0x9
END_HEADERS, PADDED, PRIORITY = 0x4, 0x8, 0x20


class FrameReader:
    """Collects client bytes and logs each complete frame."""

    def __init__(self, log):
        self.log = log
        self.buffer = b""
        self.preface_seen = False
        self.decoder = hpack.Decoder()
        self.header_block = b""
        self.message_start = {}  # stream id -> True when the next DATA byte starts a message

    def feed(self, chunk):
        self.buffer += chunk
        if not self.preface_seen:
            if len(self.buffer) < len(PREFACE):
                return
            self.buffer = self.buffer[len(PREFACE):]
            self.preface_seen = True
        while len(self.buffer) >= 9:
            length = int.from_bytes(self.buffer[0:3], "big")
            if len(self.buffer) < 9 + length:
                return
            kind, flags = self.buffer[3], self.buffer[4]
            stream = int.from_bytes(self.buffer[5:9], "big") & 0x7FFFFFFF
            payload = self.buffer[9:9 + length]
            self.buffer = self.buffer[9 + length:]
            self.frame(kind, flags, stream, payload)

    def frame(self, kind, flags, stream, payload):
        if kind in (HEADERS, DATA) and flags & PADDED:
            pad = payload[0]
            payload = payload[1:len(payload) - pad]
        if kind == HEADERS:
            if flags & PRIORITY:
                payload = payload[5:]
            self.header_block = payload
            self.message_start[stream] = True
        elif kind == CONTINUATION:
            self.header_block += payload
        elif kind == DATA:
            # A gRPC message starts with a compressed-flag byte and a 4-byte
            # length; only the first frame of each request is inspected.
            if self.message_start.pop(stream, False) and payload:
                self.log.write(f"stream {stream} grpc-compressed-flag: {payload[0]}\n")
                self.log.flush()
            return
        else:
            return
        if flags & END_HEADERS:
            for name, value in self.decoder.decode(self.header_block):
                self.log.write(f"stream {stream} {name}: {value}\n")
            self.log.flush()
            self.header_block = b""


async def pipe(reader, writer, observe=None):
    try:
        while chunk := await reader.read(65536):
            if observe:
                observe(chunk)
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main(listen_port, upstream_port, log_path):
    log = open(log_path, "a", encoding="utf-8")

    async def relay(client_reader, client_writer):
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        frames = FrameReader(log)
        await asyncio.gather(
            pipe(client_reader, upstream_writer, frames.feed),
            pipe(upstream_reader, client_writer),
        )

    server = await asyncio.start_server(relay, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
