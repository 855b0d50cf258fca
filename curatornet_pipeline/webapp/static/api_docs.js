// Starts Swagger UI on the API's OpenAPI document (a file, not an inline script: the CSP allows no inline script).
(function () {
  var root = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({ url: root.dataset.openapi, dom_id: "#swagger-ui", deepLinking: true });
})();
