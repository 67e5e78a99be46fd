"""The benchmark's IVR application, for the load benchmark against ``twistd portaum``.

Importing this module registers the application ``media-bench`` in the process-wide
registry (it is not part of the product: bench/media_load.py starts twistd through
a wrapper that imports it first). It answers, plays the test speech over and over
with barge-in, takes each key that interrupts it, and when the caller hangs up
appends ``{"call_id": ..., "digits": ..., "reported": ...}`` (the keys it took, and
every key the Call API was told of) as a JSON line to the file named by the
access number's ``results`` option.

    portaum-admin access-number add 8000 media-bench -o results=/tmp/digits.jsonl
"""

import json
import os
import wave

import numpy as np

from portaum_tx.ivr.apps import application
from portaum_tx.ivr.call import Audio, CallHungUp

SPEECH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "rtp", "data",
                      "alsa_voices_8k.wav")

with wave.open(SPEECH) as _w:
    PROMPT = Audio(np.frombuffer(_w.readframes(_w.getnframes()), dtype="<i2").astype(np.int16),
                   "speech")


@application("media-bench")
async def media_bench(call, context, options):
    heard = []
    raw = []  # every key the Call API was told of, to tell its losses from ours
    delivered = call.digit_received

    def digit_received(digit):
        raw.append(digit)
        delivered(digit)
    call.digit_received = digit_received
    try:
        await call.answer()
        while True:
            result = await call.play([PROMPT], barge_in=True)
            if result.reason == "digit":
                digits = await call.collect_digits(1, first_timeout=0.0, inter_timeout=0.0,
                                                   terminators="")
                heard.append(digits.digits)
    except CallHungUp:
        pass
    finally:
        del call.digit_received  # the wrapper holds the call: a cycle to break
        path = options.get("results")
        if path:
            with open(path, "a") as f:
                jitter = call.session.jitter if call.session else None
                f.write(json.dumps({"call_id": call.call_id, "digits": "".join(heard),
                                    "reported": "".join(raw),
                                    "jitter": jitter and {"late": jitter.late,
                                                          "resyncs": jitter.resyncs,
                                                          "overflows": jitter.overflows,
                                                          "dropped_frames": jitter.dropped_frames,
                                                          "held_frames": jitter.held_frames}})
                        + "\n")
