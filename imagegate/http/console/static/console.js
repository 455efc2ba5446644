// The copy button of a new access token: the only script the console has.
document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-copy]");
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  var status = document.getElementById("copy-status");
  var say = function (text) { if (status) status.textContent = text; };
  navigator.clipboard.writeText(source.textContent.trim()).then(
    function () { button.textContent = "Copied"; say("Token copied to the clipboard."); },
    function () { say("Copying failed: select the token and copy it by hand."); }
  );
});
