// Likes and unlikes without a page reload: POST the form, then redraw "For you" and every heart from the JSON
// the server returns. Without JavaScript the same forms post and come back to the page.
(function () {
  var HEART = "\u2665", OPEN_HEART = "\u2661";

  function setButton(form, artworkId, isLiked) {
    var button = form.querySelector("button");
    var big = button.classList.contains("big");
    form.action = "/artworks/" + encodeURIComponent(artworkId) + (isLiked ? "/unlike" : "/like");
    button.classList.toggle("liked", isLiked);
    button.setAttribute("aria-pressed", isLiked ? "true" : "false");
    button.setAttribute("aria-label", (isLiked ? "unlike " : "like ") + artworkId);
    button.textContent = isLiked ? HEART + (big ? " liked" : "") : OPEN_HEART + (big ? " like" : "");
  }

  function card(rec, position, liked) {
    var id = encodeURIComponent(rec.artwork_id);
    var href = "/artworks/" + id + "?from=for_you&pos=" + position;  // the click is counted for online metrics
    var figure = document.createElement("figure");
    figure.className = "card";
    figure.dataset.artwork = rec.artwork_id;
    figure.innerHTML =
      '<a href="' + href + '"><img src="/images/' + id + '" alt=""></a>' +
      '<figcaption><div class="caption"><a class="title" href="' + href + '"></a>' +
      '<span class="artist"></span><span class="price"></span><a class="reason"></a></div>' +
      '<form class="like-form" method="post"><button type="submit" class="like"></button></form></figcaption>';
    // Text from the catalogue goes in as text, never as markup.
    figure.querySelector(".title").textContent = rec.title;
    figure.querySelector(".artist").textContent = rec.artist || "";
    figure.querySelector(".price").textContent = rec.price || "";
    var reason = figure.querySelector(".reason");
    if (rec.reason) {
      reason.textContent = rec.reason.text;
      reason.href = "/artworks/" + encodeURIComponent(rec.reason.artwork_id);
    } else {
      reason.remove();
    }
    figure.querySelector("img").alt = rec.title;
    setButton(figure.querySelector("form"), rec.artwork_id, liked.indexOf(rec.artwork_id) >= 0);
    return figure;
  }

  function notice(text) {
    var box = document.getElementById("notice");
    if (box) { box.textContent = text; box.hidden = !text; }
  }

  function countLikes(n) {
    var link = document.querySelector('.bar a[href="/me"]');
    if (!link) return;
    var badge = link.querySelector(".n-liked");
    if (!badge && n) { badge = document.createElement("span"); badge.className = "n-liked"; link.append(" ", badge); }
    if (badge) { badge.textContent = n; badge.hidden = !n; }
  }

  function render(data) {
    countLikes(data.liked.length);
    var grid = document.getElementById("for-you-grid");
    if (grid) {
      grid.replaceChildren.apply(grid, data.for_you.map(function (rec, i) { return card(rec, i + 1, data.liked); }));
      var hint = document.getElementById("for-you-hint");
      var n = data.liked.length;
      hint.textContent = n ? "Live from your " + n + " like" + (n === 1 ? "" : "s") +
        ": CuratorNet builds your taste from the artworks you like, no account needed."
        : "Like a few artworks below and recommendations appear here at once.";
    }
    document.querySelectorAll(".like-form").forEach(function (form) {
      var card = form.closest("[data-artwork]"), page = form.closest("[data-artwork-page]");
      var id = card ? card.dataset.artwork : page && page.dataset.artworkPage;
      if (id) setButton(form, id, data.liked.indexOf(id) >= 0);
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList.contains("like-form")) return;
    event.preventDefault();
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
        render(data);
      });
  });
})();
