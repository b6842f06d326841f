// Search excerpts on a site opened from files. Sphinx's search page fetches each result's page to show an excerpt
// under it; a browser refuses fetch() on file:// pages, so there, the page's text comes from the script that
// tools/sphinx/conf.py writes for it (_static/page_text/<page>.js) instead. Served over http(s), nothing changes.
(() => {
  if (window.location.protocol !== 'file:') return;
  const realFetch = window.fetch.bind(window);
  const pages = () => window.__pageText || {};
  window.fetch = (resource, options) => {
    const url = new URL(String(resource), document.baseURI);
    const root = new URL(document.documentElement.dataset.content_root || './', document.baseURI);
    if (url.protocol !== 'file:' || !url.pathname.startsWith(root.pathname) || !url.pathname.endsWith('.html'))
      return realFetch(resource, options);
    const doc = decodeURIComponent(url.pathname.slice(root.pathname.length, -'.html'.length));
    const answer = () => new Response(pages()[doc] || '', {headers: {'Content-Type': 'text/html'}});
    if (doc in pages()) return Promise.resolve(answer());
    return new Promise((resolve) => {
      const s = document.createElement('script');
      s.src = new URL(`_static/page_text/${doc}.js`, root).href;
      s.onload = () => resolve(answer());
      s.onerror = () => resolve(new Response('', {status: 404}));
      document.head.appendChild(s);
    });
  };
})();
