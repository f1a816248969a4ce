// login-page: checks that a login page can still be used, and safely.
//
// Config (all optional):
// - `expect_text`: text the page must contain (e.g. "Sign in").
// - `csrf_fields`: comma list of hidden-field names that count as a CSRF token
//   (default: csrf, csrf_token, _csrf, _token, authenticity_token,
//   csrfmiddlewaretoken, __RequestVerificationToken).
// - `require_csrf`: `true` (default) or `false`.
// - `insecure`: `fail` (default) or `warn`: what the safety findings make the check
//   (form sent with GET, missing CSRF token, framing allowed).
// - `allow_http`: `false` (default) or `true` (a staging site without TLS): whether
//   sending the password over plain http is allowed.
//
// A page without a form holding a password field, or that would send the password
// over plain http, fails. Metrics: `forms`, `password_fields`.
import { log } from "sitewatch:check/log@0.1.0";

const DEFAULT_CSRF = [
  "csrf", "csrf_token", "_csrf", "_token", "authenticity_token",
  "csrfmiddlewaretoken", "__RequestVerificationToken",
];

export function check(response, config) {
  const cfg = Object.fromEntries(config);
  const insecure = cfg.insecure ?? "fail";
  if (insecure !== "fail" && insecure !== "warn") {
    throw `config \`insecure\` must be fail or warn, not \`${insecure}\``;
  }
  const requireCsrf = parseBool("require_csrf", cfg.require_csrf ?? "true");
  const allowHttp = parseBool("allow_http", cfg.allow_http ?? "false");
  const csrfNames = list(cfg.csrf_fields).map((n) => n.toLowerCase());
  const csrf = new Set(csrfNames.length ? csrfNames : DEFAULT_CSRF.map((n) => n.toLowerCase()));

  const html = new TextDecoder().decode(response.body);
  const forms = findForms(html);
  const login = forms.find((f) => f.inputs.some((i) => i.type === "password"));
  const passwords = forms.reduce((n, f) => n + f.inputs.filter((i) => i.type === "password").length, 0);
  const metrics = [
    { name: "forms", value: forms.length },
    { name: "password_fields", value: passwords },
  ];
  const verdict = (outcome, message) => ({ outcome, message, metrics, labels: [] });

  if (cfg.expect_text && !html.includes(cfg.expect_text)) {
    return verdict("fail", `the page does not contain "${cfg.expect_text}"`);
  }
  if (!login) {
    return verdict("fail", `no login form: none of ${forms.length} form(s) has a password field`);
  }
  const action = resolve(login.attrs.action ?? "", response.url);
  if (action === null) {
    return verdict("fail", `the login form's action \`${login.attrs.action}\` is not a URL`);
  }
  if (action.protocol === "http:" && !allowHttp) {
    return verdict("fail", `the login form sends the password over plain http to ${action.origin}`);
  }
  const findings = [];
  if ((login.attrs.method ?? "get").toLowerCase() !== "post") {
    findings.push("the login form uses GET (the password ends up in URLs and logs)");
  }
  if (requireCsrf && !login.inputs.some((i) => i.type === "hidden" && csrf.has((i.name ?? "").toLowerCase()))) {
    findings.push("no CSRF token field in the login form");
  }
  if (!framingForbidden(response.headers)) {
    findings.push("the page may be framed (no X-Frame-Options or CSP frame-ancestors)");
  }
  if (findings.length) {
    log("debug", `${findings.length} finding(s) on ${response.url}`);
    return verdict(insecure, findings.join("; "));
  }
  return verdict("pass", `login form posts to ${action.origin}${action.pathname}`);
}

function parseBool(key, value) {
  if (value === "true") return true;
  if (value === "false") return false;
  throw `config \`${key}\` must be true or false, not \`${value}\``;
}

function list(text) {
  return (text ?? "").split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

// Forms and the inputs inside them, from the tags alone (no DOM in a plugin).
function findForms(html) {
  const forms = [];
  let current = null;
  const tag = /<\s*(\/?)\s*(form|input|button)\b([^>]*)>/gi;
  for (const m of html.matchAll(tag)) {
    const [, closing, name, rest] = m;
    const lower = name.toLowerCase();
    if (lower === "form" && closing) {
      current = null;
    } else if (lower === "form") {
      current = { attrs: attributes(rest), inputs: [] };
      forms.push(current);
    } else if (lower === "input" && current) {
      const attrs = attributes(rest);
      current.inputs.push({ type: (attrs.type ?? "text").toLowerCase(), name: attrs.name });
    }
  }
  return forms;
}

function attributes(text) {
  const attrs = {};
  const attr = /([^\s=/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g;
  for (const m of text.matchAll(attr)) {
    attrs[m[1].toLowerCase()] = m[2] ?? m[3] ?? m[4] ?? "";
  }
  return attrs;
}

function resolve(action, base) {
  try {
    return new URL(action || base, base);
  } catch {
    return null;
  }
}

function framingForbidden(headers) {
  const get = (name) => headers.filter(([k]) => k === name).map(([, v]) => v.toLowerCase());
  if (get("x-frame-options").some((v) => v.includes("deny") || v.includes("sameorigin"))) return true;
  return get("content-security-policy").some((v) => v.includes("frame-ancestors"));
}
