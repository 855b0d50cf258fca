// Likes without a page reload: POST the like, then redraw "For you" from the JSON the server returns.
(function () {
  function card(rec, liked) {
    var isLiked = liked.indexOf(rec.artwork_id) >= 0;
    var id = encodeURIComponent(rec.artwork_id);
    var figure = document.createElement("figure");
    figure.className = "card";
    figure.dataset.artwork = rec.artwork_id;
    figure.innerHTML =
      '<a href="/artworks/' + id + '"><img src="/images/' + id + '" alt=""></a>' +
      '<figcaption><span class="artist"></span>' +
      '<form class="like-form" method="post" action="/artworks/' + id + '/like">' +
      '<button type="submit" class="like' + (isLiked ? " liked" : "") + '">' + (isLiked ? "\u2665" : "\u2661") + "</button></form></figcaption>";
    figure.querySelector(".artist").textContent = rec.artist_id;
    figure.querySelector("img").alt = "artwork " + rec.artwork_id;
    return figure;
  }

  function notice(text) {
    var box = document.getElementById("notice");
    if (box) { box.textContent = text; box.hidden = !text; }
  }

  function render(data) {
    var grid = document.getElementById("for-you-grid");
    if (grid) {
      grid.replaceChildren.apply(grid, data.for_you.map(function (rec) { return card(rec, data.liked); }));
      var hint = document.getElementById("for-you-hint");
      var n = data.liked.length;
      hint.textContent = "Live from your " + n + " like" + (n === 1 ? "" : "s") +
        ": CuratorNet builds your taste from the artworks you like, no account needed.";
    }
    data.liked.forEach(function (id) {
      document.querySelectorAll('.card[data-artwork="' + CSS.escape(id) + '"] .like').forEach(function (b) {
        b.classList.add("liked"); b.textContent = "\u2665";
      });
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList.contains("like-form")) return;
    event.preventDefault();
    var button = form.querySelector("button");
    fetch(form.action, { method: "POST", headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) {
        if (r.ok) return r.json();
        // The server said why (not saved, too many likes, ...): show its sentence, do not post again.
        return r.json().then(function (body) { notice(body.error || "the like was not saved"); return null; },
                             function () { notice("the like was not saved (" + r.status + ")"); return null; });
      }, function () { form.submit(); return null; })  // no answer at all: the plain form post
      .then(function (data) {
        if (!data) return;
        notice("");
        if (button.classList.contains("big")) { button.classList.add("liked"); button.textContent = "\u2665 liked"; }
        render(data);
      });
  });
})();
