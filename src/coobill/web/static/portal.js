// Light progressive enhancement; every page works without it.
document.addEventListener("DOMContentLoaded", () => {
  // Extensions: tick all rows, and only offer batch actions when rows are ticked.
  const all = document.querySelector("[data-select-all]");
  const ticks = () => [...document.querySelectorAll('input[name="ext"][form="selection"]')];
  const count = document.querySelector("[data-selection-count]");
  const refresh = () => {
    const chosen = ticks().filter((box) => box.checked).length;
    document.querySelectorAll("[data-needs-selection]").forEach((b) => { b.disabled = chosen === 0; });
    if (count) count.textContent = chosen ? `${chosen} ✓` : "";
    if (all) all.checked = chosen > 0 && chosen === ticks().length;
  };
  if (all) {
    all.addEventListener("change", () => { ticks().forEach((box) => { box.checked = all.checked; }); refresh(); });
    ticks().forEach((box) => box.addEventListener("change", refresh));
    refresh();
  }
  // Destructive buttons ask first.
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  // Settings: the symbol is only typed for another currency.
  const currency = document.querySelector("[data-currency]");
  const other = document.querySelector("[data-other-currency]");
  if (currency && other) {
    const show = () => { other.hidden = currency.value !== "OTHER"; };
    currency.addEventListener("change", show);
    show();
  }
});
