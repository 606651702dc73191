// Starts Swagger UI on /docs (a file, not an inline script, so the page's Content-Security-Policy holds).
// No validator: Swagger UI would otherwise send the API description to validator.swagger.io.
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  validatorUrl: null,
  deepLinking: true,
  layout: "BaseLayout",
  presets: [SwaggerUIBundle.presets.apis],
});
