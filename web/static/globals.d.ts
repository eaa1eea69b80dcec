// OpenSeadragon is loaded as a classic script (web/vendor/openseadragon) and is a global of
// the viewer's page; it is typed loosely here, its own API being checked by its tests.
declare const OpenSeadragon: any;
