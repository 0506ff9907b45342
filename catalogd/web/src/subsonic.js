// subsonic.js: the profile's "Subsonic apps" part: the API keys and app
// passwords that existing Subsonic apps log in with (docs/subsonic.md).
// A secret is shown once, right after it is made; lists show names only.
import { field, h } from './dom.js';

const kinds = [
  {
    path: '/users/me/subsonic/api-keys', title: 'API keys', label: 'API key',
    help: 'For apps that support OpenSubsonic API keys. Stored hashed: copy it now, it is not shown again.',
  },
  {
    path: '/users/me/subsonic/app-passwords', title: 'App passwords', label: 'app password',
    help: 'For apps that ask for a username and password. Use this instead of your Riff password, which never works there.',
  },
];

/**
 * subsonicAccess renders the section. onSubmit wires a form to an async
 * handler that gets its FormData (and shows errors); say announces a
 * status message.
 */
export async function subsonicAccess(api, onSubmit, say) {
  const section = h('section', { 'aria-label': 'Subsonic apps', class: 'stack' },
    h('h2', {}, 'Subsonic apps'),
    h('p', { class: 'muted' }, `Apps that speak the Subsonic API can play Riff. Server address: ${location.origin}`));
  for (const kind of kinds) section.append(await credentialList(api, kind, onSubmit, say));
  return section;
}

async function credentialList(api, kind, onSubmit, say) {
  const box = h('div', { class: 'stack', 'data-kind': kind.path.split('/').pop() });
  const secret = h('div', { class: 'stack', 'aria-live': 'polite' });
  const list = h('ul', { 'aria-label': kind.title });
  async function refresh() {
    const { items } = await api.get(kind.path);
    list.replaceChildren(...items.map((c) => h('li', {},
      h('span', {}, c.name), ' ', h('span', { class: 'sub' }, `made ${new Date(c.created_at).toLocaleDateString()}`), ' ',
      h('button', {
        type: 'button', class: 'ghost', 'aria-label': `Revoke ${kind.label} ${c.name}`,
        on: { click: async () => { await api.del(`${kind.path}/${c.id}`); say(`Revoked ${c.name}.`); await refresh(); } },
      }, 'Revoke'))));
    if (!items.length) list.replaceChildren(h('li', { class: 'muted' }, `No ${kind.label}s yet.`));
  }
  const form = onSubmit(h('form', { class: 'stack narrow', 'aria-label': `New ${kind.label}` },
    field('Name', h('input', { name: 'name', required: true, maxlength: 100, placeholder: 'e.g. the app and device' }), kind.help),
    h('button', { type: 'submit' }, `Create ${kind.label}`)), async (fd) => {
    const c = await api.post(kind.path, { name: String(fd.get('name')).trim() });
    const value = c.key || c.password;
    secret.replaceChildren(...[
      h('p', {}, `Your new ${kind.label} (shown once):`),
      h('code', { class: 'secret', 'data-secret': '' }, value),
      c.username && h('p', { class: 'sub' }, `Username: ${c.username}`),
    ].filter(Boolean));
    form.reset();
    say(`Created ${kind.label} ${c.name}.`);
    await refresh();
  });
  await refresh();
  box.append(h('h3', {}, kind.title), list, form, secret);
  return box;
}
