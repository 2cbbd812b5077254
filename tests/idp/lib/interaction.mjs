// The login and consent interaction, scripted: it logs in the user named by login_hint (else the user already in
// the IdP session, else the default user) and grants every requested scope in one step, so a login is three
// redirects and no HTML. With the login form enabled (for `make demo`), a request without login_hint gets a
// minimal user picker instead of the default user.

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function loginPage(uid, users) {
  const options = users
    .filter((u) => u.enabled)
    .map((u) => `<li><button name="user" value="${escapeHtml(u.sub)}">${escapeHtml(u.sub)}</button> ${escapeHtml(u.email ?? '')} groups: ${escapeHtml(u.groups.join(', ') || '-')}</li>`)
    .join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>Test IdP login</title></head>
<body><h1>Test IdP: sign in as</h1><form method="post" action="/interaction/${escapeHtml(uid)}"><ul>${options}</ul></form></body></html>`;
}

export function interactionHandler({ provider, users, settings }) {
  async function grantFor(details, sub) {
    const { params, prompt, grantId } = details;
    let grant = grantId ? await provider.Grant.find(grantId) : undefined;
    if (!grant || grant.accountId !== sub) grant = new provider.Grant({ accountId: sub, clientId: params.client_id });
    if (typeof params.scope === 'string') grant.addOIDCScope(params.scope);
    const missing = prompt.details ?? {};
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    return grant.save();
  }

  return async function handle(req, res) {
    const details = await provider.interactionDetails(req, res);
    const { params, session, uid } = details;

    let sub = typeof params.login_hint === 'string' && params.login_hint !== '' ? params.login_hint : undefined;
    if (sub === undefined && req.method === 'POST') sub = (await readForm(req)).get('user') ?? undefined;
    if (sub === undefined && settings.loginForm) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(loginPage(uid, users.list()));
      return;
    }
    sub ??= session?.accountId ?? settings.defaultUser;

    if (!users.active(sub)) {
      await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the user is not active' }, { mergeWithLastSubmission: false });
      return;
    }
    const grantId = await grantFor(details, sub);
    await provider.interactionFinished(req, res, { login: { accountId: sub }, consent: { grantId } }, { mergeWithLastSubmission: false });
  };
}
