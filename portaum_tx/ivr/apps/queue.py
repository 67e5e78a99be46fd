"""Call queue ("call-queue"), also reached from auto-attendant menus.

See :mod:`portaum_tx.ivr.queues` for what the caller hears and how the queue is shared by
the nodes. Music on hold is the queue's recording (scope ``queue:<name>``, kind ``music``)
when there is one, else a built-in melody.

Options: account (default the called number), queue (its name; required), languages,
language_list_preferred, prompts_brand.
"""

from __future__ import annotations

from twisted.logger import Logger

from portaum_tx.convert.audio import AudioFormatError, au_to_pcm16
from portaum_tx.ivr import queues
from portaum_tx.ivr.apps import AppContext, OptionError, application, apply_language_options
from portaum_tx.ivr.apps.directory import resolve_account
from portaum_tx.ivr.call import Call
from portaum_tx.store import NotFound

log = Logger()


async def queue_music(context: AppContext, queue) -> queues.Music:
    audio = await context.store.attendant.get_attendant_prompt(queue.account_id, f"queue:{queue.name}",
                                                               "music")
    if audio:
        try:
            return queues.Music(au_to_pcm16(audio), f"music-{queue.name}")
        except AudioFormatError:
            log.warn("music on hold of queue {queue} is not u-law .au; using the default",
                     queue=queue.name)
    return queues.Music()


async def enter_queue(call: Call, context: AppContext, queue, node: str = "") -> queues.QueueOutcome:
    """Keep the caller in ``queue`` until bridged and done, then hang up."""
    outcome = await queues.wait_in_queue(call, context.store, queue, await queue_music(context, queue),
                                         node=node)
    await call.hangup()
    return outcome


@application("call-queue")
async def call_queue(call: Call, context: AppContext, options: dict) -> None:
    name = options.get("queue")
    if not isinstance(name, str) or not name:
        raise OptionError(f"option queue must name a call queue, got {name!r}")
    await call.answer()
    owner = await resolve_account(context, call, options)
    apply_language_options(call, options, owner.language)
    try:
        queue = await context.store.attendant.get_queue(owner.id, name)
    except NotFound:
        raise OptionError(f"option queue: account {owner.id} has no queue {name!r}") from None
    await enter_queue(call, context, queue)
