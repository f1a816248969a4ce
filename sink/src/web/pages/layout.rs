//! The page shell: head, navigation, the stylesheet and the few lines of JavaScript (reload
//! the figures every few seconds; show a bar's or point's figures on hover).

use axum::http::StatusCode;
use maud::{html, Markup, PreEscaped, DOCTYPE};

const STYLE: &str = r#"
:root{--up:#2f9e5b;--degraded:#d99a1e;--down:#d64545;--unknown:#9aa1ab;--nodata:#e3e6ea;--maint:#5b6b8c;
--fg:#1d2430;--muted:#667085;--line:#e4e7ec;--bg:#f7f8fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header.top{display:flex;gap:1.5em;align-items:center;padding:.7em 1.5em;background:#fff;border-bottom:1px solid var(--line)}
header.top .brand{font-weight:700}
header.top a{color:var(--fg);text-decoration:none}
main{padding:1em 1.5em;max-width:1200px}
h1{font-size:1.5em;margin:.3em 0}
h2{font-size:1.1em;margin:1.4em 0 .5em}
a{color:#1f5fbf}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line)}
th,td{padding:.45em .6em;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:.85em}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.pill{display:inline-block;padding:.05em .6em;border-radius:1em;color:#fff;font-size:.85em;font-weight:600}
.pill.up{background:var(--up)}.pill.degraded{background:var(--degraded)}
.pill.down{background:var(--down)}.pill.unknown{background:var(--unknown)}
.pill.maintenance,.pill.maint-active{background:var(--maint)}.pill.maint-scheduled{background:#8a97b3}
.pill.maint-ended{background:var(--unknown)}
.loc{display:inline-block;margin:0 .3em .2em 0;padding:0 .45em;border-radius:.3em;border:1px solid;font-size:.8em}
.loc.up{border-color:var(--up);color:var(--up)}.loc.degraded{border-color:var(--degraded);color:#9a6a00}
.loc.down{border-color:var(--down);color:var(--down)}.loc.unknown{border-color:var(--unknown);color:var(--muted)}
.muted{color:var(--muted)}
.err{color:#8a1f1f;word-break:break-word}
.counts span{margin-right:1em}
.filters a{margin-right:.5em}
.filters a.on,.range a.on{font-weight:700;color:var(--fg);text-decoration:none}
.bars{display:block;margin:.2em 0 .6em}
.bars rect.nodata{fill:var(--nodata)}
.chart{background:#fff;border:1px solid var(--line)}
.chart text{font-size:11px;fill:var(--muted)}
.legend span{margin-right:1em}
.banner{padding:1em 1.2em;border-radius:.4em;color:#fff;font-weight:700;font-size:1.2em;margin:.8em 0}
.banner.up{background:var(--up)}.banner.degraded{background:var(--degraded)}
.banner.down{background:var(--down)}.banner.unknown{background:var(--unknown)}
.banner.maintenance{background:var(--maint)}
.status-site{background:#fff;border:1px solid var(--line);padding:.7em 1em;margin-bottom:.5em}
.status-site .row{display:flex;justify-content:space-between;gap:1em}
#tip{position:fixed;pointer-events:none;background:#1d2430;color:#fff;padding:.35em .55em;border-radius:.3em;font-size:12px;display:none;z-index:9;white-space:pre}
"#;

const SCRIPT: &str = r#"
(function(){
  var tip=document.getElementById('tip');
  document.addEventListener('mousemove',function(e){
    var t=e.target.closest&&e.target.closest('[data-tip]');
    if(!t){tip.style.display='none';return;}
    tip.textContent=t.getAttribute('data-tip');
    tip.style.left=(e.clientX+12)+'px';tip.style.top=(e.clientY+12)+'px';tip.style.display='block';
  });
  var every=Number(document.body.getAttribute('data-refresh'))||0;
  if(every>0){setInterval(function(){
    if(document.hidden)return;
    fetch(location.href,{credentials:'same-origin'}).then(function(r){return r.ok?r.text():null;}).then(function(html){
      if(!html)return;
      var fresh=new DOMParser().parseFromString(html,'text/html').querySelector('main');
      var main=document.querySelector('main');
      if(fresh&&main){main.replaceWith(fresh);}
    }).catch(function(){});
  },every*1000);}
})();
"#;

/// Navigation shown on internal pages (the public status page has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// Dashboard, status page, API.
    Internal,
    /// Nothing but the title.
    Public,
}

/// A whole page around `body`; `refresh_seconds` 0 turns reloading off.
pub fn page(title: &str, nav: Nav, refresh_seconds: u64, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body data-refresh=(refresh_seconds) {
                header.top {
                    @match nav {
                        Nav::Internal => {
                            a.brand href="/" { "sitewatch" }
                            a href="/" { "Dashboard" }
                            a href="/status" { "Status page" }
                            a href="/api/v1/sites" { "API" }
                        }
                        Nav::Public => { span.brand { (title) } }
                    }
                }
                main { (body) }
                div #tip {}
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
}

/// The page for a failed request: the status and the (escaped) reason.
pub fn error_page(status: StatusCode, message: &str) -> Markup {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    page(
        &title,
        Nav::Internal,
        0,
        html! {
            h1 { (title) }
            p.err #error { (message) }
            p { a href="/" { "Back to the dashboard" } }
        },
    )
}
