// MathJax settings for pymdownx.arithmatex (generic mode), which wraps the LaTeX of the
// pages in \( \) and \[ \] inside elements of class "arithmatex"; only those are typeset.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
};
