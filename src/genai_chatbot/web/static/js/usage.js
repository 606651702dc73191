// What the signed-in user has spent this month, under the chat list: from GET /api/usage.

import { api } from "./api.js";

const dollars = new Intl.NumberFormat(undefined, { style: "currency", currency: "USD", maximumFractionDigits: 4 });
const count = new Intl.NumberFormat();

/** Fill `element` with this month's spend; leave it hidden when usage cannot be read (it is not essential). */
export async function showSpend(element) {
  let usage;
  try {
    usage = await api.usage();
  } catch {
    return;
  }
  const total = usage.total;
  const tokens = total.prompt_tokens + total.completion_tokens;
  let text = `This month: ${dollars.format(total.cost_usd)} · ${count.format(tokens)} tokens`;
  if (total.unpriced) text += ` (${count.format(total.unpriced)} requests without a price)`;
  element.textContent = text;
  element.title = `From ${usage.since} to ${usage.until} (UTC), ${count.format(total.requests)} requests`;
  element.hidden = false;
}
