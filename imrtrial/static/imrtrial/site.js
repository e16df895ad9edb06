// House behaviour, loaded on every page (the CSP allows scripts from this site only, no inline).
// A button with data-print prints the page; the print style sheet leaves the navigation out.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-print]");
  if (button) {
    event.preventDefault();
    window.print();
  }
});
